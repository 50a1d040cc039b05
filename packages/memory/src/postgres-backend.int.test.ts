import { expect } from 'chai';
import pg from 'pg';
import { MAX_STATEMENT_CHARS } from '@memfleet/db/group-commit';
import { migrate } from '@memfleet/db/migrate';
import { createTestDatabase } from '@memfleet/testing/fixtures';
import { tuplesRead } from '@memfleet/testing/tuples-read';
import { BackendError } from './backend-error.ts';
import { describeBackendContract } from './backend-contract.ts';
import type { MemoryBackend, ThreadRef } from './memory-backend.ts';
import { createPostgresBackend } from './postgres-backend.ts';

async function subject(maxBatchSize?: number) {
  const db = await createTestDatabase();
  await migrate(db.url);
  const pool = new pg.Pool({ connectionString: db.url, max: 3 });
  return {
    pool,
    backend: createPostgresBackend(pool, maxBatchSize === undefined ? {} : { maxBatchSize }),
    async dispose() {
      await pool.end();
      await db.drop();
    },
  };
}

/**
 * A pool over `pool` that notes the rows of each message insert (the length of its JSON array
 * parameter), in the order the statements were sent.
 */
function countingInserts(pool: pg.Pool): { inserts: number[]; pool: pg.Pool } {
  const inserts: number[] = [];
  const counting = {
    query: (config: string | { text: string; values?: unknown[] }, values?: unknown[]) => {
      const text = typeof config === 'string' ? config : config.text;
      if (text.trim().startsWith('INSERT INTO memory_messages')) {
        const rows = (typeof config === 'string' ? values : config.values)?.[0];
        inserts.push(typeof rows === 'string' ? (JSON.parse(rows) as unknown[]).length : 0);
      }
      return typeof config === 'string' ? pool.query(config, values) : pool.query(config);
    },
  } as unknown as pg.Pool;
  return { inserts, pool: counting };
}

/** Threads `t0`…`t<count - 1>` of users `u0`…, each with its user and thread ensured. */
async function ensuredThreads(
  backend: MemoryBackend,
  count: number,
  tenantOf: (t: number) => string = () => 'acme',
): Promise<ThreadRef[]> {
  const refs = Array.from({ length: count }, (_, t) => ({
    tenant: tenantOf(t),
    userId: `u${String(t)}`,
    threadId: `t${String(t)}`,
  }));
  for (const ref of refs) {
    await backend.ensureUser(ref);
    await backend.ensureThread(ref);
  }
  return refs;
}

describeBackendContract('postgres', () => subject());

describe('postgres backend specifics', () => {
  it('remembers users and threads it created, and recreates one erased by another process', async () => {
    const s = await subject();
    const other = createPostgresBackend(s.pool);
    try {
      const ref = { tenant: 'acme', userId: 'u1', threadId: 't1' };
      const m = (id: string) => ({
        clientMessageId: id,
        role: 'user' as const,
        content: id,
        createdAt: new Date().toISOString(),
        metadata: {},
      });
      await s.backend.ensureUser(ref);
      await s.backend.ensureThread(ref);
      await s.backend.addMessages(ref, [m('a')]);
      // Known: no statement reaches Postgres (a closed table would fail it).
      await s.pool.query('ALTER TABLE memory_threads RENAME TO memory_threads_away');
      await s.backend.ensureUser(ref);
      await s.backend.ensureThread(ref);
      await s.pool.query('ALTER TABLE memory_threads_away RENAME TO memory_threads');

      await other.eraseUser(ref);
      await s.backend.ensureUser(ref);
      await s.backend.ensureThread(ref);
      const lost = await s.backend.addMessages(ref, [m('b')]).catch((err: unknown) => err);
      expect(lost).to.be.instanceOf(BackendError);
      expect(lost).to.include({ kind: 'transient' });
      // The retry creates them again.
      await s.backend.ensureUser(ref);
      await s.backend.ensureThread(ref);
      await s.backend.addMessages(ref, [m('b')]);
      expect([...(await s.backend.findWritten(ref, ['a', 'b']))]).to.deep.equal(['b']);

      // Erasing through this process forgets at once.
      await s.backend.eraseUser(ref);
      await s.backend.ensureUser(ref);
      await s.backend.ensureThread(ref);
      await s.backend.addMessages(ref, [m('c')]);
      expect([...(await s.backend.findWritten(ref, ['c']))]).to.deep.equal(['c']);
    } finally {
      await s.dispose();
    }
  });

  it('looks written ids up by key however long the thread grew after the first lookups', async () => {
    const db = await createTestDatabase();
    await migrate(db.url);
    // One connection, so the lookups and the reading of Postgres's counters share one backend.
    const single = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      const backend = createPostgresBackend(single);
      const ref = { tenant: 'acme', userId: 'u1', threadId: 't1' };
      await backend.ensureUser(ref);
      await backend.ensureThread(ref);
      // Lookups on the empty thread: a statement Postgres planned once here and kept (a generic
      // plan) reads the whole thread through its (tenant, thread, id) index once it is long.
      for (let i = 0; i < 8; i++) await backend.findWritten(ref, [`m${String(i)}`]);
      await single.query(
        `INSERT INTO memory_messages (tenant, thread_id, client_message_id, role, content, created_at)
         SELECT 'acme', 't1', 'm' || g, 'user', 'hello', now() FROM generate_series(1, 20000) g`,
      );
      const before = await tuplesRead(single, 'memory_messages');
      const ids = Array.from({ length: 90 }, (_, i) => `m${String(i * 200 + 1)}`);
      expect(await backend.findWritten(ref, ids)).to.deep.equal(new Set(ids));
      expect((await tuplesRead(single, 'memory_messages')) - before).to.be.at.most(2 * ids.length);
    } finally {
      await single.end();
      await db.drop();
    }
  });

  it('shares one insert among concurrent batches, and a refused batch fails only its caller', async () => {
    const s = await subject();
    const { inserts, pool: counting } = countingInserts(s.pool);
    const backend = createPostgresBackend(counting);
    const m = (id: string, content = `text ${id}`) => ({
      clientMessageId: id,
      role: 'user' as const,
      content,
      createdAt: new Date().toISOString(),
      metadata: { n: id },
    });
    try {
      const refs = await ensuredThreads(backend, 12, (t) => (t % 2 === 0 ? 'acme' : 'globex'));
      const batches = refs.map((ref, t) =>
        Array.from({ length: 5 }, (_, i) => m(`${ref.threadId}-${String(4 - i)}-${String(t)}`)),
      );
      await Promise.all(refs.map((ref, t) => backend.addMessages(ref, batches[t] ?? [])));
      expect(inserts).to.deep.equal([60]);
      // Each thread's batch keeps its order (ids descend in the batch, so id order is not name
      // order), and lands in its own thread and tenant.
      for (const [t, ref] of refs.entries()) {
        const recent = await backend.recentMessages(ref, 10);
        expect(recent.map((r) => r.clientMessageId)).to.deep.equal(
          (batches[t] ?? []).map((x) => x.clientMessageId),
        );
      }

      // A batch Postgres refuses (a NUL character) fails its own call; an erased thread fails
      // its own call as transient; the others land.
      inserts.length = 0;
      await createPostgresBackend(s.pool).eraseUser(refs[3] ?? refs[0]!);
      const results = await Promise.allSettled([
        backend.addMessages(refs[0]!, [m('ok-a')]),
        backend.addMessages(refs[1]!, [m('bad', 'nul \u0000')]),
        backend.addMessages(refs[2]!, [m('ok-b'), m('ok-c')]),
        backend.addMessages(refs[3]!, [m('erased')]),
      ]);
      expect(inserts[0]).to.equal(5);
      expect(results.map((r) => r.status)).to.deep.equal([
        'fulfilled',
        'rejected',
        'fulfilled',
        'rejected',
      ]);
      const reasons = results.map((r): unknown => (r.status === 'rejected' ? r.reason : undefined));
      expect(reasons[1]).to.be.instanceOf(BackendError).and.include({ kind: 'permanent' });
      expect(reasons[3]).to.be.instanceOf(BackendError).and.include({ kind: 'transient' });
      const rows = await s.pool.query<{ client_message_id: string }>(
        `SELECT client_message_id FROM memory_messages
         WHERE client_message_id IN ('ok-a', 'bad', 'ok-b', 'ok-c', 'erased')
         ORDER BY id`,
      );
      expect(rows.rows.map((r) => r.client_message_id)).to.deep.equal(['ok-a', 'ok-b', 'ok-c']);
    } finally {
      await s.dispose();
    }
  });

  it('sends a group of batches larger than MAX_STATEMENT_CHARS in several statements', async () => {
    const s = await subject();
    const { inserts, pool: counting } = countingInserts(s.pool);
    const backend = createPostgresBackend(counting);
    const big = 'x'.repeat(Math.floor(MAX_STATEMENT_CHARS * 0.4));
    try {
      const refs = await ensuredThreads(backend, 3);
      await Promise.all(
        refs.map((ref) =>
          backend.addMessages(ref, [
            {
              clientMessageId: `big-${ref.threadId}`,
              role: 'user',
              content: big,
              createdAt: new Date().toISOString(),
              metadata: {},
            },
          ]),
        ),
      );
      expect(inserts).to.deep.equal([2, 1]);
      const rows = await s.pool.query<{ n: string }>(
        "SELECT count(*) AS n FROM memory_messages WHERE client_message_id LIKE 'big-%'",
      );
      expect(rows.rows[0]?.n).to.equal('3');
    } finally {
      await s.dispose();
    }
  });

  it('stores a resent message once (idempotent per tenant and client message id)', async () => {
    const s = await subject();
    try {
      const ref = { tenant: 'acme', userId: 'u1', threadId: 't1' };
      await s.backend.ensureUser(ref);
      await s.backend.ensureThread(ref);
      const m = {
        clientMessageId: 'a',
        role: 'user' as const,
        content: 'x',
        createdAt: new Date().toISOString(),
        metadata: {},
      };
      await s.backend.addMessages(ref, [m]);
      await s.backend.addMessages(ref, [m, { ...m, clientMessageId: 'b' }]);
      const rows = await s.pool.query('SELECT client_message_id FROM memory_messages ORDER BY id');
      expect(
        rows.rows.map((r: { client_message_id: string }) => r.client_message_id),
      ).to.deep.equal(['a', 'b']);
    } finally {
      await s.dispose();
    }
  });

  it('stores each field as given: quotes, braces, backslashes; an unpaired surrogate as U+FFFD', async () => {
    const s = await subject();
    try {
      const ref = { tenant: 'acme', userId: 'u1', threadId: 't "1" {x}' };
      await s.backend.ensureUser(ref);
      await s.backend.ensureThread(ref);
      await s.backend.addMessages(ref, [
        {
          clientMessageId: 'id,"1"',
          role: 'assistant',
          name: 'bot \\ "b"',
          content: 'say "hi" \\ {x} \uD800 then \uD83D\uDE00',
          createdAt: '2026-11-20T10:00:00.123Z',
          metadata: { nested: { a: [1, 'two', null] }, q: 'x"y' },
        },
      ]);
      const rows = await s.pool.query(
        'SELECT tenant, thread_id, client_message_id, role, name, content, metadata, created_at FROM memory_messages',
      );
      expect(rows.rows).to.deep.equal([
        {
          tenant: 'acme',
          thread_id: 't "1" {x}',
          client_message_id: 'id,"1"',
          role: 'assistant',
          name: 'bot \\ "b"',
          content: 'say "hi" \\ {x} \uFFFD then \uD83D\uDE00',
          metadata: { nested: { a: [1, 'two', null] }, q: 'x"y' },
          created_at: new Date('2026-11-20T10:00:00.123Z'),
        },
      ]);
    } finally {
      await s.dispose();
    }
  });

  it('classifies rejected content as permanent and a thread of another user as permanent', async () => {
    const s = await subject();
    try {
      const ref = { tenant: 'acme', userId: 'u1', threadId: 't1' };
      await s.backend.ensureUser(ref);
      await s.backend.ensureThread(ref);
      const bad = {
        clientMessageId: 'a',
        role: 'user' as const,
        content: 'nul \u0000',
        createdAt: new Date().toISOString(),
        metadata: {},
      };
      const errors: unknown[] = [];
      await s.backend.addMessages(ref, [bad]).catch((err: unknown) => errors.push(err));
      await s.backend.ensureUser({ tenant: 'acme', userId: 'u2' });
      await s.backend
        .ensureThread({ tenant: 'acme', userId: 'u2', threadId: 't1' })
        .catch((err: unknown) => errors.push(err));
      expect(errors).to.have.length(2);
      for (const err of errors) {
        expect(err).to.be.instanceOf(BackendError);
        expect((err as BackendError).kind).to.equal('permanent');
      }
    } finally {
      await s.dispose();
    }
  });
});
