import { randomBytes } from 'node:crypto';
import { startPostgres, type PostgresServer } from './postgres-server.ts';
import { startRedis, type RedisServer } from './redis-server.ts';
import { dumpDatabase } from './store-dump.ts';
import { withPgClient } from './with-pg-client.ts';

interface FixtureState {
  redis?: Promise<RedisServer>;
  postgres?: Promise<PostgresServer>;
}

// Kept on globalThis so that the servers are shared even if this module is loaded twice in one
// run (say once by mocha's --require and once through a package symlink or the CJS loader).
const STATE_KEY = Symbol.for('@memfleet/testing/fixtures');
const holder = globalThis as typeof globalThis & { [STATE_KEY]?: FixtureState };
const state: FixtureState = (holder[STATE_KEY] ??= {});

// A failed start is forgotten so that the next caller retries instead of inheriting the error.
function sharedRedis(): Promise<RedisServer> {
  if (!state.redis) {
    const started = startRedis();
    state.redis = started;
    started.catch(() => {
      if (state.redis === started) state.redis = undefined;
    });
  }
  return state.redis;
}

function sharedPostgres(): Promise<PostgresServer> {
  if (!state.postgres) {
    const started = startPostgres();
    state.postgres = started;
    started.catch(() => {
      if (state.postgres === started) state.postgres = undefined;
    });
  }
  return state.postgres;
}

/**
 * URL of the Redis shared by this test run: `$TEST_REDIS_URL` if set, else a private server
 * started on first call and reused until {@link stopFixtures}. Tests sharing it should keep to
 * their own keys (see {@link uniquePrefix}) rather than FLUSHALL.
 */
export async function testRedisUrl(): Promise<string> {
  const fromEnv = process.env.TEST_REDIS_URL;
  if (fromEnv) return fromEnv;
  return (await sharedRedis()).url;
}

/**
 * URL of the PostgreSQL server shared by this test run (its `postgres` database, as superuser):
 * `$TEST_DATABASE_URL` if set, else a private server started on first call. Prefer
 * {@link createTestDatabase} for anything that writes.
 */
export async function testDatabaseUrl(): Promise<string> {
  const fromEnv = process.env.TEST_DATABASE_URL;
  if (fromEnv) return fromEnv;
  return (await sharedPostgres()).url;
}

/** A database created for one test or suite. */
export interface TestDatabase {
  /** Connection URL of the new database. */
  readonly url: string;
  /**
   * Terminates its connections and drops it. Idempotent. When `MEMFLEET_TEST_LOG_DIR` is set, every
   * row of its public tables is first written to `pg-<name>.dump` there for the PII scan
   * (store-dump.ts), unless the database was created with `scan: false`.
   */
  drop(): Promise<void>;
}

/** Options of {@link createTestDatabase}. */
export interface TestDatabaseOptions {
  /**
   * False for a database a test fills with raw personal data on purpose, without going through
   * the API's redaction: its rows are then left out of the PII scan. Default true.
   */
  scan?: boolean;
}

/**
 * Creates an empty database with a random name on the {@link testDatabaseUrl} server. No
 * connection is kept open: each call and `drop()` use a short-lived admin connection.
 */
export async function createTestDatabase(options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const adminUrl = await testDatabaseUrl();
  const name = `memfleet_test_${randomBytes(6).toString('hex')}`;
  await withPgClient(adminUrl, (c) => c.query(`create database "${name}"`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropping: Promise<void> | undefined;
  return {
    url: url.toString(),
    drop() {
      dropping ??= (async () => {
        if (options.scan !== false) await dumpDatabase(url.toString(), name);
        await withPgClient(adminUrl, async (c) => {
          await c.query(
            'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
            [name],
          );
          await c.query(`drop database if exists "${name}"`);
        });
      })();
      return dropping;
    },
  };
}

/**
 * A fresh Redis key prefix such as `{t3f9a0c1b2d4e}`: random so tests sharing one Redis do not
 * collide, and a hash tag so that all keys under it land in one Redis Cluster slot (BullMQ needs
 * that).
 */
export function uniquePrefix(): string {
  return `{t${randomBytes(6).toString('hex')}}`;
}

/**
 * Stops the servers the fixtures started (never those given by environment variables). Mocha
 * calls it through `mochaGlobalTeardown` in `@memfleet/testing/mocha-hooks`.
 */
export async function stopFixtures(): Promise<void> {
  const servers = [state.redis, state.postgres];
  state.redis = undefined;
  state.postgres = undefined;
  await Promise.all(
    servers.map(async (server) => {
      if (!server) return;
      const started = await server.catch(() => undefined);
      await started?.stop();
    }),
  );
}
