import { expect } from 'chai';
import { Cluster } from 'ioredis';
import pg from 'pg';
import { migrate } from '@memfleet/db/migrate';
import { createRedisClient, type RedisClient } from '@memfleet/redis/connect-redis';
import { parseRedisTarget } from '@memfleet/redis/redis-target';
import { SERVICE_NODE_ARGS, startAppProcess, type AppProcess } from '@memfleet/testing/app-process';
import { createTestDatabase, testRedisUrl, uniquePrefix } from '@memfleet/testing/fixtures';
import { httpRequestJson } from '@memfleet/testing/http-request';
import { dumpRedisPrefix } from '@memfleet/testing/store-dump';
import { waitFor } from '@memfleet/testing/wait-for';

export { waitFor };

/** Test support: a whole fleet (API and worker processes) on a fresh database and prefix. */

/** The tenant of {@link KEY}. */
export const TENANT = 'acme';
export const KEY = 'acme-key-0123456789abcdef';
export const ADMIN = 'admin-key-0123456789abcdef';
const WORKER_MAIN = 'apps/worker/src/main.ts';
const API_MAIN = 'apps/api/src/main.ts';
const READER_MAIN = 'apps/reader/src/main.ts';

/**
 * An API process and worker processes on a fresh database and key prefix, as the start command runs
 * them. The test process holds one Redis and one Postgres connection, opened before the tests.
 */
export class Fleet {
  api!: AppProcess;
  apiUrl = '';
  workers: AppProcess[] = [];
  reader: AppProcess | undefined;
  readerUrl = '';
  pg!: pg.Client;
  redis!: RedisClient;
  db!: { url: string; drop(): Promise<void> };
  prefix = uniquePrefix();
  env: Record<string, string> = {};

  async start(workerEnv: Record<string, string>, workers: number): Promise<void> {
    this.db = await createTestDatabase();
    await migrate(this.db.url);
    this.env = {
      REDIS_URL: await testRedisUrl(),
      REDIS_KEY_PREFIX: this.prefix,
      DATABASE_URL: this.db.url,
      MEMFLEET_API_KEYS: `${TENANT}:${KEY}`,
      MEMFLEET_ADMIN_KEY: ADMIN,
      API_PORT: '0',
      WORKER_METRICS_PORT: '0',
      ...workerEnv,
    };
    this.api = startAppProcess(API_MAIN, {
      name: 'api',
      env: this.env,
      nodeArgs: SERVICE_NODE_ARGS,
    });
    const listening = await this.api.waitForLine(/"message":"api listening"/, 30_000);
    this.apiUrl = (JSON.parse(listening) as { url: string }).url;
    this.pg = new pg.Client({ connectionString: this.db.url });
    // A connection Postgres ends (its server stopping) fails the next query instead of the
    // process: an unhandled 'error' event would end it without saying which client it was.
    this.pg.on('error', (err) => {
      process.stderr.write(`fleet harness: Postgres connection lost: ${err.message}\n`);
    });
    await this.pg.connect();
    this.redis = createRedisClient(parseRedisTarget(this.env.REDIS_URL));
    for (let i = 0; i < workers; i++) await this.addWorker(`worker-${i}`);
  }

  async addWorker(name: string, env: Record<string, string> = {}): Promise<AppProcess> {
    const proc = startAppProcess(WORKER_MAIN, {
      name,
      env: { ...this.env, ...env },
      nodeArgs: SERVICE_NODE_ARGS,
    });
    this.workers.push(proc);
    await proc.waitForLine(/"message":"worker ready"/, 30_000);
    return proc;
  }

  /** Starts the read service beside the fleet. */
  async addReader(env: Record<string, string> = {}): Promise<AppProcess> {
    const proc = startAppProcess(READER_MAIN, {
      name: 'reader',
      nodeArgs: SERVICE_NODE_ARGS,
      env: { ...this.env, READER_PORT: '0', ...env },
    });
    this.reader = proc;
    const listening = await proc.waitForLine(/"message":"reader listening"/, 30_000);
    this.readerUrl = (JSON.parse(listening) as { url: string }).url;
    return proc;
  }

  /** The Prometheus text of the reader. */
  async readerMetricsText(): Promise<string> {
    return (await httpRequestJson(`${this.readerUrl}/metrics`)).text;
  }

  metricsPort(proc: AppProcess): number {
    const line = proc.lines().find((l) => l.includes('"message":"worker ready"')) ?? '{}';
    return (JSON.parse(line) as { metricsPort: number }).metricsPort;
  }

  async post(
    threadId: string,
    messages: object[],
    userId = `user-of-${threadId}`,
  ): Promise<{ status: number; body: unknown }> {
    const res = await httpRequestJson(`${this.apiUrl}/v1/threads/${threadId}/messages`, {
      headers: { authorization: `Bearer ${KEY}` },
      body: { user_id: userId, messages },
    });
    return { status: res.status, body: res.json };
  }

  async status(clientMessageId: string): Promise<string | undefined> {
    return (await this.statusOf(clientMessageId)).status;
  }

  /** The API's `GET /v1/messages/{id}` answer. */
  async statusOf(
    clientMessageId: string,
  ): Promise<{ status?: string; error?: string; attempts?: number }> {
    const res = await httpRequestJson(`${this.apiUrl}/v1/messages/${clientMessageId}`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    return res.json as { status?: string; error?: string; attempts?: number };
  }

  /** `GET /v1/admin/flags`, or `PUT` with `body`, as the admin. */
  async adminFlags(body?: object): Promise<{ status: number; body: unknown }> {
    const res = await httpRequestJson(`${this.apiUrl}/v1/admin/flags`, {
      method: body === undefined ? 'GET' : 'PUT',
      headers: { authorization: `Bearer ${ADMIN}` },
      ...(body === undefined ? {} : { body }),
    });
    return { status: res.status, body: res.json };
  }

  /** The Prometheus text of the API. */
  async apiMetricsText(): Promise<string> {
    return (await httpRequestJson(`${this.apiUrl}/metrics`)).text;
  }

  /** The Prometheus text of a worker. */
  async metricsText(proc: AppProcess): Promise<string> {
    return (await httpRequestJson(`http://127.0.0.1:${this.metricsPort(proc)}/metrics`)).text;
  }

  async ledgerCount(status: string, threadPrefix = ''): Promise<number> {
    const res = await this.pg.query<{ n: string }>(
      'SELECT count(*) AS n FROM ledger WHERE status = $1 AND thread_id LIKE $2',
      [status, `${threadPrefix}%`],
    );
    return Number(res.rows[0]?.n ?? 0);
  }

  /** Holds every insert into the store until the returned function is called. */
  async blockStore(): Promise<() => Promise<void>> {
    const blocker = new pg.Client({ connectionString: this.db.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE memory_messages IN SHARE ROW EXCLUSIVE MODE');
    return async () => {
      await blocker.query('COMMIT');
      await blocker.end();
    };
  }

  /** The fleet's `DATABASE_URL` with `application_name` set, to find its connections. */
  databaseUrlNamed(applicationName: string): string {
    const url = new URL(this.env.DATABASE_URL ?? '');
    url.searchParams.set('application_name', applicationName);
    return url.toString();
  }

  async waitBlockedInsert(applicationName: string): Promise<void> {
    await waitFor(
      `${applicationName} blocked inside an insert`,
      async () => {
        const res = await this.pg.query(
          `SELECT 1 FROM pg_stat_activity WHERE application_name = $1
           AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO memory_messages%'`,
          [applicationName],
        );
        return res.rowCount !== null && res.rowCount > 0;
      },
      30_000,
    );
  }

  /** Posts `perThread` messages to each of `threads` threads named `<name>-<t>`; returns the ids. */
  async postThreads(name: string, threads: number, perThread: number) {
    const expected = new Map<string, string[]>();
    for (let t = 0; t < threads; t++) {
      const ids = Array.from({ length: perThread }, (_, n) => `${name}-${t}-${n}`);
      const res = await this.post(
        `${name}-${t}`,
        ids.map((id) => ({ client_message_id: id, role: 'user', content: id })),
      );
      expect(res.status).to.equal(202);
      expected.set(`${name}-${t}`, ids);
    }
    return expected;
  }

  async expectStoredInOrder(expected: Map<string, string[]>): Promise<void> {
    const stored = await this.storedByThread();
    for (const [threadId, ids] of expected) {
      expect(stored.get(threadId), threadId).to.deep.equal(ids);
    }
  }

  async storedByThread(): Promise<Map<string, string[]>> {
    const res = await this.pg.query<{ thread_id: string; client_message_id: string }>(
      'SELECT thread_id, client_message_id FROM memory_messages ORDER BY id',
    );
    const byThread = new Map<string, string[]>();
    for (const r of res.rows) {
      byThread.set(r.thread_id, [...(byThread.get(r.thread_id) ?? []), r.client_message_id]);
    }
    return byThread;
  }

  /** Every key matching `match` and everything stored under it, as one text to search. */
  async redisText(match = '*'): Promise<string> {
    const dump: string[] = [];
    for (const node of this.redisNodes()) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) {
          dump.push(key);
          const type = await this.redis.type(key);
          if (type === 'string') dump.push((await this.redis.get(key)) ?? '');
          if (type === 'hash') dump.push(JSON.stringify(await this.redis.hgetall(key)));
          if (type === 'list') dump.push(...(await this.redis.lrange(key, 0, -1)));
          if (type === 'set') dump.push(...(await this.redis.smembers(key)));
          if (type === 'zset') dump.push(...(await this.redis.zrange(key, 0, -1)));
          if (type === 'stream') dump.push(JSON.stringify(await this.redis.xrange(key, '-', '+')));
        }
      } while (cursor !== '0');
    }
    return dump.join('\n');
  }

  /** The servers holding keys: the one Redis, or each master of a cluster. */
  redisNodes() {
    return this.redis instanceof Cluster ? this.redis.nodes('master') : [this.redis];
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop(15_000)));
    await this.reader?.stop(15_000);
    await this.api.stop(15_000);
    // Kept for the PII scan when MEMFLEET_TEST_LOG_DIR is set, as the database is by drop().
    await dumpRedisPrefix(this.redis, this.prefix);
    for (const node of this.redisNodes()) {
      const keys = await node.keys(`${this.prefix}*`);
      // In slices: a fleet that took a benchmark's load holds a few hundred thousand keys, more
      // arguments than one spread call can pass.
      for (let i = 0; i < keys.length; i += 1000) await node.del(...keys.slice(i, i + 1000));
    }
    await this.redis.quit();
    await this.pg.end();
    await this.db.drop();
  }
}
