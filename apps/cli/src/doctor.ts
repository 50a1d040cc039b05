import { randomUUID } from 'node:crypto';
import { connectCliRedis, type RedisClient } from '@memfleet/redis/connect-redis';
import type { RedisTarget } from '@memfleet/redis/redis-target';
import pg from 'pg';
import { ConfigError, loadConfig, type Config } from '@memfleet/config/load-config';
import { pendingMigrations } from '@memfleet/db/migrate';
import { toError } from '@memfleet/errors/to-error';
import { BackendError } from '@memfleet/memory/backend-error';
import { createMemoryBackend } from '@memfleet/memory/create-backend';
import type { MemoryBackend, ThreadRef } from '@memfleet/memory/memory-backend';

/** One line of the doctor's report. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** What to do about a failure. */
  fix?: string;
}

/** Oldest Redis that BullMQ 5+ and the outbox scripts are run against. */
const MIN_REDIS = [6, 2, 0] as const;

function olderThan(version: string, min: readonly number[]): boolean {
  const parts = version.split('.').map((p) => Number(p));
  for (let i = 0; i < min.length; i++) {
    const have = parts[i] ?? 0;
    const want = min[i] ?? 0;
    if (have !== want) return have < want;
  }
  return false;
}

/** What a backend failure means for its credentials or settings, in the operator's words. */
function backendFix(config: Config, err: unknown): string {
  const key =
    config.memoryBackend === 'zep'
      ? 'ZEP_API_KEY'
      : config.memoryBackend === 'mem0'
        ? 'MEM0_API_KEY'
        : 'DATABASE_URL';
  const url =
    config.memoryBackend === 'zep'
      ? 'ZEP_API_URL'
      : config.memoryBackend === 'mem0'
        ? 'MEM0_API_URL'
        : 'DATABASE_URL';
  if (err instanceof BackendError) {
    if (err.kind === 'auth') return `the backend rejects the credentials: check ${key}`;
    if (err.kind === 'rate_limited')
      return 'the backend is rate limiting this key: try again later';
    if (err.kind === 'permanent')
      return `the backend refused the request: check ${url} and the plan's limits`;
  }
  return `the backend is unreachable or failing: check ${url} and its status`;
}

async function redisChecks(target: RedisTarget): Promise<Check[]> {
  const checks: Check[] = [];
  let redis: RedisClient;
  try {
    redis = await connectCliRedis(target);
    await redis.ping();
    checks.push({ name: 'redis: reachable', ok: true, detail: 'PING answered' });
  } catch (err: unknown) {
    return [
      {
        name: 'redis: reachable',
        ok: false,
        detail: toError(err).message,
        fix: 'start Redis or correct REDIS_URL / REDIS_CLUSTER_NODES',
      },
    ];
  }
  try {
    const info = await redis.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    const old = olderThan(version, MIN_REDIS);
    checks.push({
      name: 'redis: version',
      ok: !old,
      detail: version,
      ...(old ? { fix: `upgrade Redis to ${MIN_REDIS.join('.')} or newer` } : {}),
    });
    const config = async (key: string): Promise<string | undefined> => {
      const pair = (await redis.config('GET', key)) as string[];
      return pair[1];
    };
    const policy = await config('maxmemory-policy');
    checks.push({
      name: 'redis: maxmemory-policy',
      ok: policy === 'noeviction',
      detail: policy ?? 'unknown',
      ...(policy === 'noeviction'
        ? {}
        : {
            fix: 'set maxmemory-policy noeviction (redis.conf, or CONFIG SET): any other policy lets Redis evict queued jobs and outbox entries',
          }),
    });
    const aof = await config('appendonly');
    checks.push({
      name: 'redis: AOF persistence',
      ok: aof === 'yes',
      detail: `appendonly ${aof ?? 'unknown'}`,
      ...(aof === 'yes'
        ? {}
        : {
            fix: 'set appendonly yes: without it a Redis restart loses accepted messages',
          }),
    });
  } catch (err: unknown) {
    checks.push({
      name: 'redis: settings',
      ok: false,
      detail: toError(err).message,
      fix: 'allow CONFIG GET and INFO for this user, or check the settings by hand (version ≥ 6.2, noeviction, appendonly yes)',
    });
  } finally {
    redis.disconnect();
  }
  return checks;
}

async function postgresChecks(url: string): Promise<Check[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    const res = await client.query<{ v: string }>('SHOW server_version');
    await client.end();
    const checks: Check[] = [
      { name: 'postgres: reachable', ok: true, detail: `server ${res.rows[0]?.v ?? 'unknown'}` },
    ];
    const pending = await pendingMigrations(url);
    checks.push({
      name: 'postgres: migrations',
      ok: pending.length === 0,
      detail: pending.length === 0 ? 'all applied' : `not applied: ${pending.join(', ')}`,
      ...(pending.length === 0 ? {} : { fix: 'run `pnpm migrate` (the start command does)' }),
    });
    return checks;
  } catch (err: unknown) {
    await client.end().catch(() => undefined);
    return [
      {
        name: 'postgres: reachable',
        ok: false,
        detail: toError(err).message,
        fix: 'start Postgres or correct DATABASE_URL',
      },
    ];
  }
}

/**
 * Runs every backend method the fleet uses against a scratch user and thread of the tenant
 * `memfleet-doctor`, then erases them. Stops at the first failure: later methods depend on it.
 */
async function backendChecks(config: Config): Promise<Check[]> {
  const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 2 });
  pool.on('error', () => undefined);
  const timeoutMs = config.worker.backendTimeoutMs;
  let backend: MemoryBackend;
  try {
    backend = createMemoryBackend(config, { pool, timeoutMs });
  } catch (err: unknown) {
    await pool.end();
    return [
      {
        name: `backend ${config.memoryBackend}: client`,
        ok: false,
        detail: toError(err).message,
        fix: 'check the backend settings',
      },
    ];
  }
  const run = randomUUID().slice(0, 8);
  const thread: ThreadRef = {
    tenant: 'memfleet-doctor',
    userId: `doctor-${run}`,
    threadId: `doctor-${run}`,
  };
  const id = `doctor-${run}`;
  const steps: [string, () => Promise<string>][] = [
    ['ensure_user', async () => (await backend.ensureUser(thread), 'ok')],
    ['ensure_thread', async () => (await backend.ensureThread(thread), 'ok')],
    [
      'add_messages',
      async () => {
        await backend.addMessages(thread, [
          {
            clientMessageId: id,
            role: 'user',
            content: 'The memfleet doctor likes green tea in the morning.',
            createdAt: new Date().toISOString(),
            metadata: {},
          },
        ]);
        return '1 message';
      },
    ],
    [
      'find_written',
      async () => {
        const found = await backend.findWritten(thread, [id]);
        if (!found.has(id)) throw new Error('the probe message is not reported as written');
        return 'probe found';
      },
    ],
    ['recent_messages', async () => `${(await backend.recentMessages(thread, 5)).length} entries`],
    [
      'get_context',
      async () => `${(await backend.getContext(thread, { messages: 5 })).context.length} chars`,
    ],
    ['erase_user', async () => (await backend.eraseUser(thread), 'scratch user erased')],
  ];
  const checks: Check[] = [];
  try {
    for (const [op, step] of steps) {
      const name = `backend ${backend.name}: ${op}`;
      try {
        const signal = AbortSignal.timeout(
          op === 'add_messages' ? (backend.writeTimeoutMs ?? timeoutMs) : timeoutMs,
        );
        const detail = await Promise.race([
          step(),
          new Promise<never>((_, reject) => {
            signal.addEventListener('abort', () => {
              reject(new Error(`no answer within ${timeoutMs} ms`));
            });
          }),
        ]);
        checks.push({ name, ok: true, detail });
      } catch (err: unknown) {
        checks.push({
          name,
          ok: false,
          detail: toError(err).message,
          fix: backendFix(config, err),
        });
        if (op !== 'erase_user') {
          await backend.eraseUser(thread).catch(() => undefined);
        }
        break;
      }
    }
  } finally {
    await pool.end();
  }
  return checks;
}

/**
 * Checks what a fleet needs: the configuration, Redis (version, `noeviction`, AOF), Postgres and
 * its migrations, and the memory backend's credentials through every method the fleet calls.
 */
export async function runDoctor(env: NodeJS.ProcessEnv): Promise<Check[]> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err: unknown) {
    if (!(err instanceof ConfigError)) throw err;
    return err.issues.map((issue) => ({
      name: `config: ${issue.split(':')[0] ?? 'environment'}`,
      ok: false,
      detail: issue,
      fix: 'set the variable as the README (Configuration) describes',
    }));
  }
  const checks: Check[] = [
    { name: 'config', ok: true, detail: `MEMORY_BACKEND=${config.memoryBackend}` },
  ];
  const [redis, postgres] = await Promise.all([
    redisChecks(config.redis),
    postgresChecks(config.databaseUrl),
  ]);
  checks.push(...redis, ...postgres);
  const pgUp = postgres.some((c) => c.name === 'postgres: reachable' && c.ok);
  const migrated = postgres.some((c) => c.name === 'postgres: migrations' && c.ok);
  if (config.memoryBackend !== 'postgres' || (pgUp && migrated)) {
    checks.push(...(await backendChecks(config)));
  } else {
    checks.push({
      name: 'backend postgres',
      ok: false,
      detail: 'not checked: its tables come with the migrations',
      fix: 'fix Postgres and its migrations first',
    });
  }
  return checks;
}
