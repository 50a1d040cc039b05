import { execFile } from 'node:child_process';
import { chmod, chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toError } from '@memfleet/errors/to-error';
import { freePort } from './free-port.ts';
import { removeDirOnExit } from './orphan-guard.ts';
import { findPostgresBinDir } from './postgres-bin-dir.ts';
import { spawnServer, type ServerProcess } from './server-process.ts';
import { withPgClient } from './with-pg-client.ts';

/** A private PostgreSQL server for tests. */
export interface PostgresServer {
  /**
   * `postgres:///postgres?host=<dir>&port=<port>&user=postgres`: the server's Unix socket (trust
   * auth, superuser `postgres`), which spares every query the kernel's TCP work on both sides of
   * the loopback, as a client of a Postgres on the same host would connect.
   */
  readonly url: string;
  /** `postgres://postgres@127.0.0.1:<port>/postgres`: the same server over TCP. */
  readonly tcpUrl: string;
  /** Fast shutdown, then removes the data directory. Idempotent. */
  stop(): Promise<void>;
}

interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const PORT_ATTEMPTS = 8;
const SUPERUSER = 'postgres';

// initdb and postgres refuse to run as root, so as root we hand the cluster to `postgres` when
// that account exists (Debian's package creates it) and to `nobody` otherwise.
async function unprivilegedUser(): Promise<OsUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const passwd = await readFile('/etc/passwd', 'utf8');
  const users = new Map<string, OsUser>();
  for (const line of passwd.split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name && uid && gid) users.set(name, { name, uid: Number(uid), gid: Number(gid) });
  }
  const user = users.get('postgres') ?? users.get('nobody');
  if (!user) throw new Error('running as root but neither a postgres nor a nobody user exists');
  return user;
}

// Only what initdb/postgres need: a stray PGDATA/PGPORT or locale from the caller must not leak in.
function serverEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' };
}

function initdb(
  binDir: string,
  dataDir: string,
  cwd: string,
  user: OsUser | undefined,
): Promise<void> {
  const args = ['-D', dataDir, '-U', SUPERUSER, '-A', 'trust', '-E', 'UTF8', '--locale=C', '-N'];
  return new Promise((resolve, reject) => {
    execFile(
      join(binDir, 'initdb'),
      args,
      {
        cwd,
        env: serverEnv(),
        timeout: 120_000,
        ...(user ? { uid: user.uid, gid: user.gid } : {}),
      },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`initdb failed: ${err.message}\n${stdout}\n${stderr}`));
        else resolve();
      },
    );
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

type LaunchResult =
  { ok: true; proc: ServerProcess } | { ok: false; portInUse: boolean; log: string };

async function launch(
  binDir: string,
  dir: string,
  dataDir: string,
  port: number,
  user: OsUser | undefined,
): Promise<LaunchResult> {
  const proc = await spawnServer({
    command: join(binDir, 'postgres'),
    args: [
      '-D',
      dataDir,
      '-p',
      String(port),
      '-h',
      '127.0.0.1',
      '-k',
      dir,
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=300',
    ],
    cwd: dir,
    env: serverEnv(),
    logFile: join(dir, 'postgres.log'),
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
    // SIGQUIT is postgres's immediate shutdown: the postmaster takes its backends down with it.
    exitSignal: 'SIGQUIT',
    dir,
  });
  const url = `postgres://${SUPERUSER}@127.0.0.1:${port}/postgres`;
  const deadline = Date.now() + START_TIMEOUT_MS;
  let lastError = '';
  while (Date.now() < deadline) {
    if (proc.exitStatus()) {
      const log = await proc.logTail();
      return { ok: false, portInUse: /address already in use/i.test(log), log };
    }
    try {
      // Checking the data directory proves we reached our server, not one that took the port.
      const served = await withPgClient(
        url,
        async (c) =>
          (await c.query<{ d: string }>("select current_setting('data_directory') as d")).rows[0]
            ?.d,
        2000,
      );
      if (served === dataDir) return { ok: true, proc };
      lastError = `port ${port} is served by another postgres (${served ?? '?'})`;
    } catch (err: unknown) {
      lastError = toError(err).message;
    }
    await sleep(100);
  }
  const log = await proc.logTail();
  await proc.stop('SIGQUIT', STOP_TIMEOUT_MS);
  throw new Error(
    `postgres did not accept connections within ${START_TIMEOUT_MS} ms (${lastError}); log:\n${log}`,
  );
}

/** libpq's form of a Unix-socket URL: the socket's directory and port in the query. */
function socketUrl(dir: string, port: number): string {
  const query = new URLSearchParams({ host: dir, port: String(port), user: SUPERUSER });
  return `postgres:///postgres?${query.toString()}`;
}

/**
 * Starts a private, throw-away PostgreSQL cluster: initdb (trust auth, UTF8) into a fresh temp
 * directory, owned by an unprivileged user when running as root, then `postgres` on 127.0.0.1 and
 * a free port with its Unix socket in that directory and durability off (`fsync`,
 * `synchronous_commit`, `full_page_writes`) for speed, `max_connections=300`. Resolves once it
 * accepts connections. The server never outlives the caller, even if the caller is SIGKILLed.
 */
export async function startPostgres(): Promise<PostgresServer> {
  const binDir = await findPostgresBinDir();
  const user = await unprivilegedUser();
  const dir = await mkdtemp(join(tmpdir(), 'memfleet-pg-'));
  const keepDir = removeDirOnExit(dir);
  const cleanup = async (): Promise<void> => {
    await rm(dir, { recursive: true, force: true });
    keepDir();
  };
  const dataDir = join(dir, 'data');
  let proc: ServerProcess | undefined;
  let port = 0;
  try {
    await chmod(dir, 0o700);
    if (user) await chown(dir, user.uid, user.gid);
    await initdb(binDir, dataDir, dir, user);
    let lastLog = '';
    for (let attempt = 0; attempt < PORT_ATTEMPTS && !proc; attempt += 1) {
      port = await freePort();
      const result = await launch(binDir, dir, dataDir, port, user);
      if (result.ok) proc = result.proc;
      else if (!result.portInUse) throw new Error(`postgres exited at start; log:\n${result.log}`);
      else lastLog = result.log;
    }
    if (!proc)
      throw new Error(`postgres found no free port in ${PORT_ATTEMPTS} tries; log:\n${lastLog}`);
  } catch (err: unknown) {
    await cleanup();
    throw err;
  }
  const running: ServerProcess = proc;
  let stopping: Promise<void> | undefined;
  return {
    url: socketUrl(dir, port),
    tcpUrl: `postgres://${SUPERUSER}@127.0.0.1:${port}/postgres`,
    stop() {
      // SIGINT is postgres's fast shutdown: it disconnects clients instead of waiting for them.
      stopping ??= running.stop('SIGINT', STOP_TIMEOUT_MS).then(cleanup);
      return stopping;
    },
  };
}
