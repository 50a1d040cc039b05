import { expect } from 'chai';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '@memfleet/testing/fixtures';
import { tuplesRead } from '@memfleet/testing/tuples-read';
import { MAX_STATEMENT_CHARS } from './group-commit.ts';
import { createLedger, type Ledger, type LedgerEntry } from './ledger.ts';
import { migrate } from './migrate.ts';

const bodyOf = (content: string) =>
  JSON.stringify({
    role: 'user',
    content,
    created_at: '2026-11-21T10:00:00.000Z',
    metadata: { source: 'test' },
  });

function entry(id: string, seq: number, overrides: Partial<LedgerEntry> = {}): LedgerEntry {
  return {
    tenant: 'acme',
    clientMessageId: id,
    threadId: 't1',
    userId: 'u1',
    seq,
    attempts: 1,
    acceptedAt: new Date('2026-11-20T10:00:00.000Z'),
    body: bodyOf(`text ${id}`),
    ...overrides,
  };
}

describe('ledger (real Postgres)', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let ledger: Ledger;

  beforeEach(async () => {
    db = await createTestDatabase();
    await migrate(db.url);
    pool = new pg.Pool({ connectionString: db.url, max: 3 });
    ledger = createLedger(pool);
  });

  afterEach(async () => {
    await pool.end();
    await db.drop();
  });

  it('shares one statement among concurrent calls, and a refused row fails only its caller', async () => {
    const statements: string[] = [];
    const counting = {
      query: (config: { text: string; values?: unknown[] }) => {
        statements.push(config.text.trim().split(/\s+/)[0] ?? '');
        return pool.query(config);
      },
    } as unknown as pg.Pool;
    const shared = createLedger(counting);
    const threads = Array.from({ length: 20 }, (_, t) =>
      [0, 1].map((m) =>
        entry(`c${String(t)}-${String(m)}`, m + 1, {
          threadId: `t${String(t)}`,
          tenant: t % 2 === 0 ? 'acme' : 'globex',
        }),
      ),
    );
    await Promise.all(threads.map((e) => shared.recordWritten(e, 'zep')));
    expect(statements).to.deep.equal(['INSERT']);

    statements.length = 0;
    const found = await Promise.all(
      threads.map((e, t) =>
        shared.findWritten(
          t % 2 === 0 ? 'acme' : 'globex',
          [...e.map((x) => x.clientMessageId), `unknown-${String(t)}`],
          'zep',
        ),
      ),
    );
    // One statement per tenant (the calls came from two).
    expect(statements).to.deep.equal(['SELECT', 'SELECT']);
    expect(found.map((f) => [...f].sort())).to.deep.equal(
      threads.map((e) => e.map((x) => x.clientMessageId).sort()),
    );
    // Tenants stay apart: acme's ids asked as globex's are not written.
    expect([...(await shared.findWritten('globex', ['c0-0'], 'zep'))]).to.deep.equal([]);
    expect([...(await shared.findWritten('acme', ['c0-0'], 'mem0'))]).to.deep.equal([]);

    // A body Postgres refuses (not JSON) fails its own call; the others land.
    const results = await Promise.allSettled([
      shared.recordWritten([entry('ok-1', 1)], 'zep'),
      shared.recordWritten([entry('bad', 2, { body: '{not json' })], 'zep'),
      shared.recordWritten([entry('ok-2', 3)], 'zep'),
    ]);
    expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    expect(await row('ok-1')).to.include({ status: 'written' });
    expect(await row('ok-2')).to.include({ status: 'written' });
    expect(await row('bad')).to.equal(undefined);
  });

  it('sends a group of calls larger than MAX_STATEMENT_CHARS in several statements', async () => {
    const rows: number[] = [];
    const counting = {
      query: (config: { text: string; values?: unknown[] }) => {
        if (config.text.trim().startsWith('INSERT')) rows.push(rowsOf(config.values));
        return pool.query(config);
      },
    } as unknown as pg.Pool;
    const shared = createLedger(counting);
    const big = bodyOf('x'.repeat(Math.floor(MAX_STATEMENT_CHARS * 0.4)));
    await Promise.all(
      [0, 1, 2].map((i) =>
        shared.recordWritten([entry(`big-${String(i)}`, i + 1, { body: big })], 'zep'),
      ),
    );
    expect(rows).to.deep.equal([2, 1]);
    for (const i of [0, 1, 2])
      expect(await row(`big-${String(i)}`)).to.include({ status: 'written' });
  });

  it('sends calls that arrive while its statement runs together in the next one (group commit)', async () => {
    const statements: { verb: string; rows: number }[] = [];
    let release: () => void = () => undefined;
    let gate: Promise<void> | undefined = new Promise((resolve) => (release = resolve));
    const gated = {
      query: async (config: { text: string; values?: unknown[] }) => {
        statements.push({
          verb: config.text.trim().split(/\s+/)[0] ?? '',
          rows: rowsOf(config.values),
        });
        const held = gate;
        gate = undefined;
        if (held !== undefined) await held;
        return pool.query(config);
      },
    } as unknown as pg.Pool;
    const grouped = createLedger(gated);
    const first = grouped.recordWritten([entry('g0', 1)], 'zep');
    await new Promise((resolve) => setImmediate(resolve));
    // Each in its own turn, while the first statement is held at the "database".
    const later: Promise<void>[] = [];
    for (let i = 1; i <= 3; i++) {
      later.push(grouped.recordWritten([entry(`g${String(i)}`, i + 1)], 'zep'));
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(statements).to.deep.equal([{ verb: 'INSERT', rows: 1 }]);
    release();
    await Promise.all([first, ...later]);
    expect(statements).to.deep.equal([
      { verb: 'INSERT', rows: 1 },
      { verb: 'INSERT', rows: 3 },
    ]);
    for (const id of ['g0', 'g1', 'g2', 'g3']) {
      expect(await row(id)).to.include({ status: 'written' });
    }
    // Nothing in flight: a lone call goes out at once, on its own.
    statements.length = 0;
    expect(await grouped.findWritten('acme', ['g1', 'gx'], 'zep')).to.deep.equal(new Set(['g1']));
    expect(statements).to.deep.equal([{ verb: 'SELECT', rows: 2 }]);
  });

  it('inserts written rows it does not hold, and upserts a statement with any row it holds', async () => {
    const kinds: string[] = [];
    const counting = {
      query: (config: { text: string; values?: unknown[] }) => {
        if (config.text.trim().startsWith('INSERT')) {
          kinds.push(config.text.includes('ON CONFLICT') ? 'upsert' : 'insert');
        }
        return pool.query(config);
      },
    } as unknown as pg.Pool;
    const counted = createLedger(counting);
    await counted.recordWritten([entry('n1', 1), entry('n2', 2)], 'zep');
    await counted.recordDead([entry('d1', 3)], 'zep', 'refused');
    expect(kinds).to.deep.equal(['insert', 'upsert']);

    // One statement for both calls; d1 is there (dead), so it goes again as the upsert.
    kinds.length = 0;
    await Promise.all([
      counted.recordWritten([entry('n3', 4)], 'zep'),
      counted.recordWritten([entry('d1', 3, { attempts: 2 })], 'zep'),
    ]);
    expect(kinds).to.deep.equal(['insert', 'upsert']);
    expect(await row('n3')).to.include({ status: 'written', backend: 'zep' });
    expect(await row('d1')).to.include({ status: 'written', backend: 'zep' });

    // A written row recorded again for its backend stays as it was.
    kinds.length = 0;
    await counted.recordWritten([entry('n1', 1, { attempts: 5, body: bodyOf('other') })], 'zep');
    expect(kinds).to.deep.equal(['insert', 'upsert']);
    const again = await pool.query<{ attempts: number; body: { content: string } }>(
      'SELECT attempts, body FROM ledger WHERE client_message_id = $1',
      ['n1'],
    );
    expect(again.rows[0]).to.deep.include({ attempts: 1 });
    expect(again.rows[0]?.body.content).to.equal('text n1');
    expect(await pool.query('SELECT 1 FROM ledger')).to.have.property('rowCount', 4);
  });

  /**
   * Rows a ledger statement carries: its JSON array parameter (the upsert's first, the written
   * check's second).
   */
  function rowsOf(values: unknown[] | undefined): number {
    const rows = values?.find((v) => typeof v === 'string' && v.startsWith('['));
    return typeof rows === 'string' ? (JSON.parse(rows) as unknown[]).length : 0;
  }

  async function row(id: string) {
    const res = await pool.query<{ status: string; backend: string; body: unknown }>(
      'SELECT status, backend, body FROM ledger WHERE client_message_id = $1',
      [id],
    );
    return res.rows[0];
  }

  it('answers written per backend, and a write to a new backend records that backend', async () => {
    await ledger.recordWritten([entry('m1', 1), entry('m2', 2)], 'postgres');
    expect(await ledger.findWritten('acme', ['m1', 'm2', 'mx'], 'postgres')).to.deep.equal(
      new Set(['m1', 'm2']),
    );
    expect(await ledger.findWritten('acme', ['m1', 'm2'], 'zep')).to.deep.equal(new Set());
    expect(await ledger.findWritten('globex', ['m1'], 'postgres')).to.deep.equal(new Set());

    // The backfill writes m1 to Zep: the ledger now says Zep, and no longer postgres.
    await ledger.recordWritten([entry('m1', 1, { attempts: 1 })], 'zep');
    expect(await ledger.findWritten('acme', ['m1', 'm2'], 'zep')).to.deep.equal(new Set(['m1']));
    expect(await ledger.findWritten('acme', ['m1', 'm2'], 'postgres')).to.deep.equal(
      new Set(['m2']),
    );
    // A dead-letter never overwrites a written row, whatever backend it names.
    await ledger.recordDead([entry('m2', 2)], 'zep', 'too long for zep');
    expect(await row('m2')).to.include({ status: 'written', backend: 'postgres' });
  });

  it('looks written ids up by key however much the tenant grew after the first lookups', async () => {
    // One connection, so the lookups, the counters' flush and their reading share one backend.
    const single = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      const small = createLedger(single);
      // Lookups on the empty table: a statement Postgres planned once here and kept (a generic
      // plan) reads the whole tenant through an index on tenant alone once the table is big.
      for (let i = 0; i < 8; i++) await small.findWritten('acme', [`m${String(i)}`], 'postgres');
      await single.query(
        `INSERT INTO ledger (tenant, client_message_id, thread_id, user_id, seq, status, backend,
                             accepted_at, written_at)
         SELECT 'acme', 'm' || g, 't' || (g % 300), 'u' || (g % 300), g, 'written', 'postgres',
                now(), now()
         FROM generate_series(1, 20000) g`,
      );
      const before = await tuplesRead(single, 'ledger');
      const ids = Array.from({ length: 90 }, (_, i) => `m${String(i * 200 + 1)}`);
      expect(await small.findWritten('acme', ids, 'postgres')).to.deep.equal(new Set(ids));
      expect((await tuplesRead(single, 'ledger')) - before).to.be.at.most(2 * ids.length);
    } finally {
      await single.end();
    }
  });

  it('keeps the written body as JSON, none for dead rows or bodies jsonb cannot hold', async () => {
    await ledger.recordWritten(
      [entry('m1', 1), entry('nul', 2, { body: bodyOf('a \u0000 b') })],
      'postgres',
    );
    await ledger.recordDead([entry('d1', 4)], 'postgres', 'rejected');
    expect((await row('m1'))?.body).to.deep.equal(JSON.parse(bodyOf('text m1')));
    expect((await row('nul'))?.status).to.equal('written');
    expect((await row('nul'))?.body).to.equal(null);
    expect((await row('d1'))?.body).to.equal(null);
    // A row written without a body gets one when it is written again (to another backend).
    await ledger.recordWritten([entry('plain', 5, { body: undefined })], 'postgres');
    expect((await row('plain'))?.body).to.equal(null);
    await ledger.recordWritten([entry('plain', 5)], 'zep');
    expect((await row('plain'))?.body).to.deep.equal(JSON.parse(bodyOf('text plain')));
    // Erasure deletes the rows, bodies with them.
    expect(await ledger.eraseUser('acme', 'u1')).to.equal(4);
    expect(await row('m1')).to.equal(undefined);
  });

  it('records every column as given, quotes and unpaired surrogates included', async () => {
    const acceptedAt = new Date('2026-11-20T10:00:00.123Z');
    const odd = 'id "quoted" \\ back\uD800slash';
    await ledger.recordWritten(
      [
        entry(odd, 9_007_199_254_740, {
          threadId: 't "1"',
          userId: 'u,{1}',
          attempts: 3,
          acceptedAt,
          body: bodyOf('say "hi" \\ then {leave}'),
        }),
      ],
      'zep',
    );
    const res = await pool.query<{
      client_message_id: string;
      thread_id: string;
      user_id: string;
      seq: string;
      attempts: number;
      accepted_at: Date;
      body: unknown;
    }>(
      'SELECT client_message_id, thread_id, user_id, seq, attempts, accepted_at, body FROM ledger',
    );
    expect(res.rows).to.deep.equal([
      {
        client_message_id: 'id "quoted" \\ back\uFFFDslash',
        thread_id: 't "1"',
        user_id: 'u,{1}',
        seq: '9007199254740',
        attempts: 3,
        accepted_at: acceptedAt,
        body: JSON.parse(bodyOf('say "hi" \\ then {leave}')) as unknown,
      },
    ]);
    expect(
      await ledger.findWritten('acme', ['id "quoted" \\ back\uFFFDslash', 'x'], 'zep'),
    ).to.deep.equal(new Set(['id "quoted" \\ back\uFFFDslash']));
  });

  it('lists written rows since a time, by tenant, in (tenant, thread, seq) order after a position', async () => {
    const old = new Date('2026-01-01T00:00:00.000Z');
    await ledger.recordWritten(
      [
        entry('b2', 2, { threadId: 'tb' }),
        entry('a1', 1, { threadId: 'ta' }),
        entry('b1', 1, { threadId: 'tb' }),
        entry('a0', 0, { threadId: 'ta', acceptedAt: old }),
      ],
      'postgres',
    );
    await ledger.recordWritten([entry('g1', 1, { tenant: 'globex' })], 'zep');
    await ledger.recordDead([entry('a2', 2, { threadId: 'ta' })], 'postgres', 'x');
    const since = new Date('2026-11-01T00:00:00.000Z');
    const ids = (rows: { clientMessageId: string }[]) => rows.map((r) => r.clientMessageId);

    expect(ids(await ledger.writtenRows({ since }, 100))).to.deep.equal(['a1', 'b1', 'b2', 'g1']);
    expect(await ledger.countWritten({ since })).to.equal(4);
    expect(ids(await ledger.writtenRows({ since: old }, 2))).to.deep.equal(['a0', 'a1']);
    expect(ids(await ledger.writtenRows({ since, tenants: ['globex'] }, 100))).to.deep.equal([
      'g1',
    ]);
    const after = { tenant: 'acme', threadId: 'tb', seq: 1 };
    expect(ids(await ledger.writtenRows({ since, after }, 100))).to.deep.equal(['b2', 'g1']);
    expect(await ledger.countWritten({ since, after, tenants: ['acme'] })).to.equal(1);

    const [g1] = await ledger.writtenRows({ since, tenants: ['globex'] }, 1);
    expect(g1).to.deep.include({
      tenant: 'globex',
      threadId: 't1',
      userId: 'u1',
      seq: 1,
      status: 'written',
      backend: 'zep',
      body: JSON.parse(bodyOf('text g1')) as unknown,
    });
    const records = await ledger.records('acme', ['a2', 'b1', 'nope']);
    expect(records.map((r) => [r.clientMessageId, r.status]).sort()).to.deep.equal([
      ['a2', 'dead'],
      ['b1', 'written'],
    ]);
  });
});
