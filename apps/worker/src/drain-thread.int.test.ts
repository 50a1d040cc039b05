import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createLedger } from '@memfleet/db/ledger';
import { createFlags, type Flags } from '@memfleet/flags/flags';
import { migrate } from '@memfleet/db/migrate';
import { createLogger } from '@memfleet/logger/create-logger';
import { BackendError } from '@memfleet/memory/backend-error';
import { createBackendGate, type BackendGate } from '@memfleet/memory/backend-gate';
import type { MemoryBackend } from '@memfleet/memory/memory-backend';
import { createPostgresBackend } from '@memfleet/memory/postgres-backend';
import { createRegistry } from '@memfleet/metrics/create-registry';
import { createWorkerMetrics, type WorkerMetrics } from '@memfleet/metrics/worker-metrics';
import { createOutbox, type Outbox } from '@memfleet/outbox/outbox';
import { createTestDatabase, testRedisUrl, uniquePrefix } from '@memfleet/testing/fixtures';
import { createThreadDrainer, RetryableDrainError, type DrainDeps } from './drain-thread.ts';

const settings = {
  maxAttempts: 3,
  lockTtlMs: 5000,
  sliceMs: 10_000,
  backendTimeoutMs: 2000,
  modeOffRetryMs: 200,
};

function bodyOf(content: string): string {
  return JSON.stringify({
    role: 'user',
    content,
    created_at: '2026-11-21T10:00:00.000Z',
    metadata: { source: 'test' },
  });
}

describe('drainThread (real Redis and Postgres)', () => {
  let redis: Redis;
  let pool: pg.Pool;
  let db: { url: string; drop(): Promise<void> };
  let outbox: Outbox;
  let metrics: WorkerMetrics;
  let prefix: string;
  let gate: BackendGate;
  let flags: Flags;

  const deps = (overrides: Partial<DrainDeps> = {}): DrainDeps => ({
    outbox,
    ledger: createLedger(pool),
    backend: createPostgresBackend(pool, { maxBatchSize: 4 }),
    gate,
    flags,
    metrics,
    logger: createLogger({ service: 'test', stream: new PassThrough() }),
    isStopping: () => false,
    settings,
    ...overrides,
  });

  async function post(threadId: string, ids: string[], content = (id: string) => `text ${id}`) {
    await outbox.append(
      'acme',
      threadId,
      'u1',
      ids.map((id) => ({ clientMessageId: id, body: bodyOf(content(id)) })),
      Date.now(),
    );
  }

  async function stored(threadId: string): Promise<string[]> {
    const res = await pool.query<{ client_message_id: string }>(
      'SELECT client_message_id FROM memory_messages WHERE tenant = $1 AND thread_id = $2 ORDER BY id',
      ['acme', threadId],
    );
    return res.rows.map((r) => r.client_message_id);
  }

  beforeEach(async () => {
    db = await createTestDatabase();
    await migrate(db.url);
    pool = new pg.Pool({ connectionString: db.url, max: 5 });
    redis = new Redis(await testRedisUrl());
    prefix = uniquePrefix();
    outbox = createOutbox(redis, { prefix, dedupeWindowS: 600 });
    metrics = createWorkerMetrics(createRegistry('worker'));
    flags = createFlags(redis, {
      prefix,
      defaults: { mode: 'read_write', canaryPercent: 100 },
      refreshMs: 100,
      downgradeMs: 60_000,
      downgradeAuthFailures: 2,
    });
    gate = createBackendGate(redis, {
      prefix,
      backend: 'postgres',
      settings: {
        failureThreshold: 100,
        windowMs: 10_000,
        cooldownMs: 1000,
        authRetryMs: 1000,
        rateLimitDefaultMs: 1000,
        probeTtlMs: 3000,
      },
    });
  });

  afterEach(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await pool.end();
    await db.drop();
  });

  it('writes a thread in accept order, in batches up to the backend limit, and records the ledger', async () => {
    const ids = Array.from({ length: 10 }, (_, i) => `m${i}`);
    await post('t1', ids);
    const result = await createThreadDrainer(deps())('acme', 't1');
    expect(result).to.deep.equal({ outcome: 'drained', written: 10, dead: 0 });
    expect(await stored('t1')).to.deep.equal(ids);
    const batches = await metrics.batchSize.get();
    const count = batches.values.find((v) => v.metricName === 'memfleet_batch_size_messages_count');
    expect(count?.value).to.equal(3); // 4 + 4 + 2
    const ledger = await pool.query('SELECT status FROM ledger WHERE tenant = $1', ['acme']);
    expect(ledger.rows.map((r: { status: string }) => r.status)).to.deep.equal(
      Array(10).fill('written'),
    );
    expect(await outbox.length('acme', 't1')).to.equal(0);
    expect((await outbox.status('acme', 'm0'))?.status).to.equal('written');
  });

  it('asks the gate once per batch, and skips ensuring a thread the backend already knows', async () => {
    const real = createPostgresBackend(pool, { maxBatchSize: 4 });
    const calls: string[] = [];
    const backend: MemoryBackend = {
      ...real,
      ensureUser: (...args) => (calls.push('ensure_user'), real.ensureUser(...args)),
      ensureThread: (...args) => (calls.push('ensure_thread'), real.ensureThread(...args)),
      addMessages: (...args) => (calls.push('add'), real.addMessages(...args)),
    };
    let permits = 0;
    const counted: BackendGate = {
      ...gate,
      acquire: () => (permits++, gate.acquire()),
    };
    const drain = createThreadDrainer(deps({ backend, gate: counted }));
    await post('t1', ['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(await drain('acme', 't1')).to.deep.equal({ outcome: 'drained', written: 5, dead: 0 });
    // A new thread: created once, then two batches (4 + 1), one permit for each call.
    expect(calls).to.deep.equal(['ensure_user', 'ensure_thread', 'add', 'add']);
    expect(permits).to.equal(4);

    calls.length = 0;
    permits = 0;
    await post('t1', ['m5']);
    expect(await drain('acme', 't1')).to.deep.equal({ outcome: 'drained', written: 1, dead: 0 });
    expect(calls).to.deep.equal(['add']);
    expect(permits).to.equal(1);
    expect(await stored('t1')).to.deep.equal(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
  });

  describe('drains larger than one backend call (drainBatchSize)', () => {
    /** A postgres backend taking 2 messages a call, drained 6 at a time, its calls counted. */
    function chunked(fail?: (call: number) => 'after_write' | 'before_write' | undefined) {
      const real = createPostgresBackend(pool, { maxBatchSize: 2 });
      const sizes: number[] = [];
      const backend: MemoryBackend = {
        ...real,
        drainBatchSize: 6,
        addMessages: async (thread, messages, options) => {
          sizes.push(messages.length);
          const how = fail?.(sizes.length);
          if (how === 'before_write') {
            throw new BackendError('permanent', 'refused before writing', { status: 400 });
          }
          await real.addMessages(thread, messages, options);
          if (how === 'after_write') throw new BackendError('transient', 'timed out after writing');
        },
      };
      return { backend, sizes };
    }

    it('sends the messages in calls of the backend limit, with one ledger record and commit for all', async () => {
      const ids = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6'];
      await post('t1', ids);
      const { backend, sizes } = chunked();
      const real = createLedger(pool);
      let records = 0;
      const ledger = {
        ...real,
        recordWritten: (...args: Parameters<typeof real.recordWritten>) => {
          records++;
          return real.recordWritten(...args);
        },
      };
      const result = await createThreadDrainer(deps({ backend, ledger }))('acme', 't1');
      expect(result).to.deep.equal({ outcome: 'drained', written: 7, dead: 0 });
      expect(sizes).to.deep.equal([2, 2, 2, 1]);
      expect(records).to.equal(2); // 6, then 1
      expect(await stored('t1')).to.deep.equal(ids);
      expect(await outbox.length('acme', 't1')).to.equal(0);
    });

    it('commits the calls before a failed one; the rest is retried, reconciled and written once', async () => {
      const ids = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'];
      await post('t1', ids);
      // The second call writes, then its answer is lost: m2 and m3 are stored, uncertain.
      const { backend, sizes } = chunked((call) => (call === 2 ? 'after_write' : undefined));
      const drain = createThreadDrainer(deps({ backend }));
      const caught = await drain('acme', 't1').catch((err: unknown) => err);
      expect(caught).to.be.instanceOf(RetryableDrainError);
      expect(sizes).to.deep.equal([2, 2]);
      expect(await outbox.length('acme', 't1')).to.equal(4);
      expect((await outbox.status('acme', 'm1'))?.status).to.equal('written');
      const ledger = await pool.query<{ client_message_id: string }>(
        "SELECT client_message_id FROM ledger WHERE status = 'written' ORDER BY seq",
      );
      expect(ledger.rows.map((r) => r.client_message_id)).to.deep.equal(['m0', 'm1']);

      const result = await drain('acme', 't1');
      expect(result).to.deep.equal({ outcome: 'drained', written: 4, dead: 0 });
      expect(sizes).to.deep.equal([2, 2, 2]); // m2 and m3 found in the backend, m4 and m5 sent
      expect(await stored('t1')).to.deep.equal(ids);
    });

    it('after a refused call, commits the calls before it and isolates the culprit in that call alone', async () => {
      await post('t1', ['m0', 'm1', 'm2', 'poison', 'm4', 'm5'], (id) =>
        id === 'poison' ? 'bad \u0000 byte' : `text ${id}`,
      );
      const { backend, sizes } = chunked();
      const result = await createThreadDrainer(deps({ backend }))('acme', 't1');
      expect(result).to.deep.equal({ outcome: 'drained', written: 5, dead: 1 });
      // m0 m1 | m2 poison (refused) | m2 | poison (refused, dead) | m4 m5
      expect(sizes).to.deep.equal([2, 2, 1, 1, 2]);
      expect(await stored('t1')).to.deep.equal(['m0', 'm1', 'm2', 'm4', 'm5']);
      expect((await outbox.status('acme', 'poison'))?.status).to.equal('dead');
    });

    it('a call refused before any write leaves the whole drain batch as it was', async () => {
      await post('t1', ['m0', 'm1', 'm2']);
      const { backend, sizes } = chunked((call) => (call === 1 ? 'before_write' : undefined));
      const result = await createThreadDrainer(deps({ backend }))('acme', 't1');
      // m0 m1 refused (permanent): m0 and m1 go one by one (written), then m2.
      expect(result).to.deep.equal({ outcome: 'drained', written: 3, dead: 0 });
      expect(sizes).to.deep.equal([2, 1, 1, 1]);
      expect(await stored('t1')).to.deep.equal(['m0', 'm1', 'm2']);
    });
  });

  it('never writes twice after a crash between the backend ack and the outbox commit', async () => {
    await post('t1', ['a', 'b', 'c']);
    // A drain that wrote a and b, then died before committing: the write is marked uncertain.
    const backend = createPostgresBackend(pool);
    const ref = { tenant: 'acme', threadId: 't1', userId: 'u1' };
    await outbox.beginWrite('acme', 't1', ['a', 'b', 'c']);
    await backend.ensureUser(ref);
    await backend.ensureThread(ref);
    await backend.addMessages(ref, [
      {
        clientMessageId: 'a',
        role: 'user',
        content: 'text a',
        createdAt: new Date().toISOString(),
        metadata: {},
      },
      {
        clientMessageId: 'b',
        role: 'user',
        content: 'text b',
        createdAt: new Date().toISOString(),
        metadata: {},
      },
    ]);
    const result = await createThreadDrainer(deps())('acme', 't1');
    expect(result).to.include({ outcome: 'drained', written: 3 });
    expect(await stored('t1')).to.deep.equal(['a', 'b', 'c']);
    const skipped = (await metrics.duplicatesSkipped.get()).values.find(
      (v) => v.labels.source === 'backend',
    );
    expect(skipped?.value).to.equal(2);
  });

  it('skips messages the ledger already has (a resend after the Redis status expired)', async () => {
    await post('t1', ['a']);
    await createThreadDrainer(deps())('acme', 't1');
    await redis.del(outbox.keys.message('acme', 'a'));
    await post('t1', ['a']);
    expect(await outbox.length('acme', 't1')).to.equal(1);
    const result = await createThreadDrainer(deps())('acme', 't1');
    expect(result).to.include({ outcome: 'drained', written: 1 });
    expect(await stored('t1')).to.deep.equal(['a']);
  });

  it('isolates a message the backend rejects and dead-letters it with the reason; the thread goes on in order', async () => {
    // Postgres text cannot hold NUL: the backend rejects this message permanently.
    await post('t1', ['m1', 'm2', 'poison', 'm4', 'm5', 'm6'], (id) =>
      id === 'poison' ? 'bad \u0000 byte' : `text ${id}`,
    );
    const result = await createThreadDrainer(deps())('acme', 't1');
    expect(result).to.deep.equal({ outcome: 'drained', written: 5, dead: 1 });
    expect(await stored('t1')).to.deep.equal(['m1', 'm2', 'm4', 'm5', 'm6']);
    const dead = await outbox.status('acme', 'poison');
    expect(dead?.status).to.equal('dead');
    expect(dead?.error).to.match(/postgres rejected the write/);
    const row = await pool.query<{ status: string; error: string }>(
      'SELECT status, error FROM ledger WHERE client_message_id = $1',
      ['poison'],
    );
    expect(row.rows[0]?.status).to.equal('dead');
    expect(await redis.zrange(outbox.keys.dead('acme'), 0, -1)).to.deep.equal(['poison']);
  });

  it('dead-letters a corrupt outbox record instead of crashing, and keeps going', async () => {
    await post('t1', ['m1']);
    await redis.hset(outbox.keys.message('acme', 'm1'), 'body', '{"role":"nobody"');
    await post('t1', ['m2']);
    const result = await createThreadDrainer(deps())('acme', 't1');
    expect(result).to.deep.equal({ outcome: 'drained', written: 1, dead: 1 });
    expect((await outbox.status('acme', 'm1'))?.error).to.match(/corrupt/);
    expect(await stored('t1')).to.deep.equal(['m2']);
  });

  it('retries transient failures with the attempt number, then dead-letters after the last attempt', async () => {
    await post('t1', ['m1', 'm2']);
    // A backend whose server is gone: every call fails with a connection error (transient).
    const gone = new pg.Pool({
      connectionString: 'postgres://x@127.0.0.1:1/none',
      connectionTimeoutMillis: 500,
    });
    const drain = createThreadDrainer(deps({ backend: createPostgresBackend(gone) }));
    for (const attempt of [1, 2]) {
      let caught: unknown;
      try {
        await drain('acme', 't1');
      } catch (err: unknown) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(RetryableDrainError);
      expect((caught as RetryableDrainError).attempt).to.equal(attempt);
      expect(await outbox.length('acme', 't1')).to.equal(2);
    }
    const result = await drain('acme', 't1');
    expect(result).to.deep.equal({ outcome: 'drained', written: 0, dead: 2 });
    const status = await outbox.status('acme', 'm2');
    expect(status?.status).to.equal('dead');
    expect(status?.attempts).to.equal(3);
    expect(status?.error).to.match(/^gave up after 3 attempts/);
    await gone.end();
  });

  it('does not drain a thread another drain holds, and says how long to wait', async () => {
    await post('t1', ['m1']);
    await outbox.acquireLock('acme', 't1', 'someone-else', 3000);
    const result = await createThreadDrainer(deps())('acme', 't1');
    expect(result.outcome).to.equal('locked');
    expect(result.outcome === 'locked' && result.retryInMs).to.be.within(1, 3000);
    expect(await stored('t1')).to.deep.equal([]);
  });

  it('yields after its time slice or on shutdown, leaving the rest for the next drain', async () => {
    await post(
      't1',
      Array.from({ length: 8 }, (_, i) => `m${i}`),
    );
    let stopping = false;
    const drain = createThreadDrainer(
      deps({ isStopping: () => stopping, settings: { ...settings, sliceMs: 60_000 } }),
    );
    stopping = true;
    expect(await drain('acme', 't1')).to.deep.equal({ outcome: 'yielded', written: 0, dead: 0 });
    stopping = false;
    expect(await drain('acme', 't1')).to.deep.equal({ outcome: 'drained', written: 8, dead: 0 });
  });
  it('writes nothing while memory writes are off for the tenant, uses no attempt, and drains once they are back', async () => {
    await post('t1', ['m1', 'm2']);
    await flags.update({ tenants: { acme: { mode: 'off' } } });
    const drain = createThreadDrainer(deps());
    expect(await drain('acme', 't1')).to.deep.equal({ outcome: 'mode_off', retryInMs: 200 });
    expect(await stored('t1')).to.deep.equal([]);
    expect(await outbox.length('acme', 't1')).to.equal(2);
    const status = await outbox.status('acme', 'm1');
    expect(status?.status).to.equal('queued');
    expect(status?.attempts).to.equal(0);
    // The lock was not taken: another drain may look at once.
    expect(await outbox.lockTtlMs('acme', 't1')).to.be.at.most(0);

    await flags.update({ tenants: { acme: { mode: 'write_only' } } });
    expect(await drain('acme', 't1')).to.deep.equal({ outcome: 'drained', written: 2, dead: 0 });
    expect(await stored('t1')).to.deep.equal(['m1', 'm2']);
  });

  it('reports 401s to the flags, which downgrade reads after enough in a row; a good probe resets the count', async () => {
    await post('t1', ['m1']);
    const good = createPostgresBackend(pool, { maxBatchSize: 4 });
    let rejecting = true;
    // Every call is refused while `rejecting`, as with a revoked key.
    const refused = () => Promise.reject(new BackendError('auth', 'answered 401', { status: 401 }));
    const backend: MemoryBackend = {
      ...good,
      ensureUser: (...args) => (rejecting ? refused() : good.ensureUser(...args)),
      ensureThread: (...args) => (rejecting ? refused() : good.ensureThread(...args)),
      addMessages: (...args) => (rejecting ? refused() : good.addMessages(...args)),
    };
    const drain = createThreadDrainer(deps({ backend }));
    const failures = () => redis.get(`${prefix}:flags:auth_failures`);

    expect(await drain('acme', 't1')).to.include({ outcome: 'paused', reason: 'auth' });
    expect(await failures()).to.equal('1');
    expect(flags.snapshot().downgrade).to.equal(undefined);
    // The gate holds writes for authRetryMs (1 s), then lets one probe through, which fails again.
    const deadline = Date.now() + 10_000;
    while (flags.snapshot().downgrade === undefined && Date.now() < deadline) {
      expect(await drain('acme', 't1')).to.include({ outcome: 'paused', reason: 'auth' });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(flags.snapshot().downgrade?.reason).to.equal('auth');
    expect(flags.forThread('acme', 't1')).to.include({ mode: 'write_only', writes: true });
    expect(await failures()).to.equal('2');

    rejecting = false;
    const until = Date.now() + 10_000;
    let result = await drain('acme', 't1');
    while (result.outcome === 'paused' && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      result = await drain('acme', 't1');
    }
    expect(result).to.deep.equal({ outcome: 'drained', written: 1, dead: 0 });
    expect(await failures(), 'count reset by the good probe').to.equal(null);
    expect(await stored('t1')).to.deep.equal(['m1']);
  });
});
