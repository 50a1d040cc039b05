import type { Redis } from 'ioredis';
import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import pg from 'pg';
import { createLedger } from '@memfleet/db/ledger';
import { migrate } from '@memfleet/db/migrate';
import { createDrainQueue, type DrainQueue } from '@memfleet/jobs/thread-drain';
import { createLogger } from '@memfleet/logger/create-logger';
import { createPostgresBackend } from '@memfleet/memory/postgres-backend';
import type { Outbox } from '@memfleet/outbox/outbox';
import { useTestOutbox } from '@memfleet/outbox/outbox.fixture';
import { createTestDatabase } from '@memfleet/testing/fixtures';
import { createUserEraser } from './erase-user.ts';

const body = (content: string) =>
  JSON.stringify({ role: 'user', content, created_at: new Date().toISOString(), metadata: {} });
const quiet = createLogger({ service: 'test', stream: new PassThrough() });

describe('user erasure (real Redis and Postgres)', () => {
  const ctx = useTestOutbox();
  let pool: pg.Pool;
  let db: { url: string; drop(): Promise<void> };
  let outbox: Outbox;
  let queue: DrainQueue;
  let queueRedis: Redis;

  beforeEach(async () => {
    db = await createTestDatabase();
    await migrate(db.url);
    pool = new pg.Pool({ connectionString: db.url, max: 3 });
    ({ outbox } = ctx);
    // The fixture closes its client in its own afterEach, which runs before this file's.
    queueRedis = ctx.redis.duplicate();
    queue = createDrainQueue({ connection: queueRedis, prefix: ctx.prefix, maxMessageAttempts: 3 });
  });
  afterEach(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    await queueRedis.quit();
    await pool.end();
    await db.drop();
  });

  it('asks for a drain of a message accepted while it held the thread, after letting go', async () => {
    await outbox.append('acme', 't1', 'u1', [{ clientMessageId: 'old', body: body('old') }], 1);
    // A message accepted after the erasure listed the thread's messages, before it erased them.
    const racing: Outbox = {
      ...outbox,
      async eraseThread(tenant, threadId, userId, token, ids) {
        const appended = await outbox.append(
          tenant,
          threadId,
          userId,
          [{ clientMessageId: 'new', body: body('new') }],
          2,
        );
        expect(appended).to.deep.include({ ok: true, results: ['queued'] });
        return outbox.eraseThread(tenant, threadId, userId, token, ids);
      },
    };
    const erase = createUserEraser({
      outbox: racing,
      ledger: createLedger(pool),
      backend: createPostgresBackend(pool),
      queue,
      logger: quiet,
      settings: { lockTtlMs: 5000, backendTimeoutMs: 2000 },
    });

    const result = await erase('acme', 'u1');
    expect(result).to.include({ threads: 1, messages: 1 });
    expect(await outbox.status('acme', 'old')).to.equal(undefined);
    expect(await outbox.pendingIds('acme', 't1')).to.deep.equal(['new']);
    expect(await outbox.lockTtlMs('acme', 't1')).to.equal(0);
    const waiting = await queue.getJobs(['wait'], 0, -1);
    expect(waiting.map((j) => j.data)).to.deep.equal([{ tenant: 'acme', threadId: 't1' }]);
  });

  it('given up part way, asks for a drain of each held thread with messages waiting', async () => {
    await outbox.append('acme', 't1', 'u1', [{ clientMessageId: 'a', body: body('a') }], 1);
    await outbox.append('acme', 't2', 'u1', [{ clientMessageId: 'b', body: body('b') }], 1);
    const backend = createPostgresBackend(pool);
    const erase = createUserEraser({
      outbox,
      ledger: createLedger(pool),
      backend: {
        ...backend,
        async eraseUser() {
          // Accepted while the erasure holds every thread of the user: the append asks for no
          // drain, the holder answers for it.
          const appended = await outbox.append(
            'acme',
            't1',
            'u1',
            [{ clientMessageId: 'c', body: body('c') }],
            2,
          );
          expect(appended).to.deep.include({ ok: true, drainNeeded: false });
          throw new Error('backend down');
        },
      },
      queue,
      logger: quiet,
      settings: { lockTtlMs: 5000, backendTimeoutMs: 2000 },
    });

    const failed = await erase('acme', 'u1').catch((e: unknown) => e);
    expect(failed).to.be.instanceOf(Error).with.property('message', 'backend down');
    expect(await outbox.lockTtlMs('acme', 't1')).to.equal(0);
    expect(await outbox.lockTtlMs('acme', 't2')).to.equal(0);
    expect(await outbox.pendingIds('acme', 't1')).to.deep.equal(['a', 'c']);
    const waiting = await queue.getJobs(['wait'], 0, -1);
    expect(
      waiting.map((j) => j.data).sort((x, y) => x.threadId.localeCompare(y.threadId)),
    ).to.deep.equal([
      { tenant: 'acme', threadId: 't1' },
      { tenant: 'acme', threadId: 't2' },
    ]);
  });
});
