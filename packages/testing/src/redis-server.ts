import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.ts';
import { removeDirOnExit } from './orphan-guard.ts';
import { spawnServer, type ServerProcess } from './server-process.ts';

/** Options of {@link startRedis}. */
export interface RedisServerOptions {
  /**
   * Persist writes to an append-only file so they survive {@link RedisServer.kill} and
   * {@link RedisServer.restart}. Default `false`. When on, `appendfsync always` is used so that
   * a SIGKILL loses no acknowledged write; pass `args` to override.
   */
  appendonly?: boolean;
  /** Extra `redis-server` arguments, applied last so they override the defaults. Default none. */
  args?: string[];
}

/** A private `redis-server` for tests. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Working directory (AOF files, log); removed by {@link RedisServer.stop}. */
  readonly dir: string;
  /** Shuts down gracefully and removes {@link RedisServer.dir}. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILLs the server (a crash); the directory is kept for {@link RedisServer.restart}. */
  kill(): Promise<void>;
  /** Stops the server if it runs, then starts it again on the same port with the same data. */
  restart(): Promise<void>;
}

/**
 * `hash-max-listpack-value` as the fleet's Redis runs it (scripts/start.sh, docker/compose.yaml):
 * a message's record then stays a compact listpack after its body has gone (see the README's
 * Sizing).
 */
export const HASH_MAX_LISTPACK_VALUE = '8192';

const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;
const PORT_ATTEMPTS = 8;

/**
 * Asks the server on `port` for its pid (`INFO server`) and checks it is `pid`: a bare PING could
 * be answered by some other server that grabbed the port we were racing for. A loading server
 * answers `-LOADING`, which counts as not ready.
 */
function answersAs(port: number, pid: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let reply = '';
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => finish(false));
    socket.on('error', () => finish(false));
    socket.on('connect', () => socket.write('INFO server\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('utf8');
      if (reply.startsWith('-')) finish(false);
      const match = /process_id:(\d+)\r\n/.exec(reply);
      if (match) finish(match[1] === String(pid));
    });
    socket.on('close', () => finish(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

type LaunchResult =
  { ok: true; proc: ServerProcess } | { ok: false; portInUse: boolean; log: string };

async function launch(
  dir: string,
  port: number,
  options: RedisServerOptions,
): Promise<LaunchResult> {
  const appendonly = options.appendonly ?? false;
  const proc = await spawnServer({
    command: 'redis-server',
    args: [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      appendonly ? 'yes' : 'no',
      ...(appendonly ? ['--appendfsync', 'always'] : []),
      '--maxmemory-policy',
      'noeviction',
      '--hash-max-listpack-value',
      HASH_MAX_LISTPACK_VALUE,
      '--daemonize',
      'no',
      ...(options.args ?? []),
    ],
    cwd: dir,
    logFile: join(dir, 'redis.log'),
    dir,
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (proc.exitStatus()) {
      const log = await proc.logTail();
      return { ok: false, portInUse: /address already in use/i.test(log), log };
    }
    if (await answersAs(port, proc.pid)) return { ok: true, proc };
    await sleep(50);
  }
  const log = await proc.logTail();
  await proc.stop('SIGKILL', STOP_TIMEOUT_MS);
  throw new Error(`redis-server did not answer within ${START_TIMEOUT_MS} ms; log:\n${log}`);
}

/**
 * Starts a private `redis-server` on 127.0.0.1 and a free port, in a fresh temp directory, with
 * RDB snapshots off, `maxmemory-policy noeviction` (what BullMQ requires) and the fleet's
 * `hash-max-listpack-value` ({@link HASH_MAX_LISTPACK_VALUE}). Resolves once it answers. The
 * process never outlives the caller, even if the caller is SIGKILLed.
 */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'memfleet-redis-'));
  const keepDir = removeDirOnExit(dir);
  let proc: ServerProcess | undefined;
  let port = 0;
  let lastLog = '';
  try {
    for (let attempt = 0; attempt < PORT_ATTEMPTS && !proc; attempt += 1) {
      port = await freePort();
      const result = await launch(dir, port, options);
      if (result.ok) proc = result.proc;
      else if (!result.portInUse)
        throw new Error(`redis-server exited at start; log:\n${result.log}`);
      else lastLog = result.log;
    }
  } catch (err: unknown) {
    keepDir();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  if (!proc) {
    keepDir();
    await rm(dir, { recursive: true, force: true });
    throw new Error(`redis-server found no free port in ${PORT_ATTEMPTS} tries; log:\n${lastLog}`);
  }
  let current: ServerProcess | undefined = proc;
  let stopping: Promise<void> | undefined;

  // The port we gave up may be briefly taken by someone else (or still closing), so a restart
  // retries on the same port for a while instead of picking a new one.
  const relaunch = async (): Promise<void> => {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const result = await launch(dir, port, options);
      if (result.ok) {
        current = result.proc;
        return;
      }
      if (!result.portInUse || Date.now() > deadline) {
        throw new Error(`redis-server failed to restart on port ${port}; log:\n${result.log}`);
      }
      await sleep(200);
    }
  };

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    stop() {
      stopping ??= (async () => {
        await current?.stop('SIGTERM', STOP_TIMEOUT_MS);
        current = undefined;
        await rm(dir, { recursive: true, force: true });
        keepDir();
      })();
      return stopping;
    },
    async kill() {
      await current?.stop('SIGKILL', STOP_TIMEOUT_MS);
      current = undefined;
    },
    async restart() {
      if (stopping) throw new Error('restart() after stop(): the data directory is gone');
      await current?.stop('SIGTERM', STOP_TIMEOUT_MS);
      current = undefined;
      await relaunch();
    },
  };
}
