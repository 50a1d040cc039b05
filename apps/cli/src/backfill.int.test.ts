import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { tableTotals } from '@memfleet/testing/cli-table';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createLedger, type Ledger } from '@memfleet/db/ledger';
import { migrate } from '@memfleet/db/migrate';
import { createDrainQueue } from '@memfleet/jobs/thread-drain';
import { createOutbox, type Outbox } from '@memfleet/outbox/outbox';
import { startAppProcess } from '@memfleet/testing/app-process';
import {
  createTestDatabase,
  testRedisUrl,
  uniquePrefix,
  type TestDatabase,
} from '@memfleet/testing/fixtures';

const CLI = 'apps/cli/src/main.ts';

const bodyOf = (content: string) =>
  JSON.stringify({
    role: 'user',
    content,
    created_at: '2026-11-20T10:00:00.000Z',
    metadata: {},
  });

describe('memfleet backfill (real Redis and Postgres, no workers)', function () {
  this.timeout(60_000);
  let redis: Redis;
  let prefix: string;
  let outbox: Outbox;
  let db: TestDatabase;
  let pool: pg.Pool;
  let ledger: Ledger;
  let dir: string;

  async function cli(
    args: string[],
    env: Record<string, string> = {},
  ): Promise<{ code: number | null; out: string }> {
    const proc = startAppProcess(CLI, {
      name: 'memfleet',
      args,
      env: {
        REDIS_URL: await testRedisUrl(),
        REDIS_KEY_PREFIX: prefix,
        DATABASE_URL: db.url,
        ...env,
      },
    });
    const code = await proc.waitForExit(30_000);
    return { code, out: proc.lines().join('\n') };
  }

  /** Messages a fleet wrote to `backend`: accepted, drained, recorded in the ledger with bodies. */
  async function written(
    tenant: string,
    threadId: string,
    ids: string[],
    backend = 'postgres',
    keepBody = true,
  ): Promise<void> {
    const res = await outbox.append(
      tenant,
      threadId,
      `user-of-${threadId}`,
      ids.map((id) => ({ clientMessageId: id, body: bodyOf(`text ${id}`) })),
      Date.now(),
    );
    expect(res.ok).to.equal(true);
    expect(await outbox.acquireLock(tenant, threadId, 'tok', 5000)).to.equal(true);
    const head = await outbox.readHead(tenant, threadId, 100);
    await ledger.recordWritten(
      head.messages.map((m) => ({
        tenant,
        clientMessageId: m.clientMessageId,
        threadId,
        userId: `user-of-${threadId}`,
        seq: m.seq,
        attempts: 1,
        acceptedAt: m.acceptedAt,
        body: keepBody ? m.body : undefined,
      })),
      backend,
    );
    await outbox.commit(tenant, threadId, 'tok', ids, { status: 'written' }, Date.now());
    await outbox.releaseLock(tenant, threadId, 'tok');
  }

  const cursorKeys = () => redis.keys(`${prefix}:backfill:*`);
  /** The drain jobs waiting, as `tenant/thread`. */
  async function drainJobs(): Promise<string[]> {
    const queue = createDrainQueue({ connection: redis, prefix, maxMessageAttempts: 10 });
    try {
      const jobs = await queue.getWaiting();
      return jobs.map((j) => `${j.data.tenant}/${j.data.threadId}`).sort();
    } finally {
      await queue.close();
    }
  }

  beforeEach(async () => {
    db = await createTestDatabase();
    await migrate(db.url);
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
    ledger = createLedger(pool);
    redis = new Redis(await testRedisUrl());
    prefix = uniquePrefix();
    outbox = createOutbox(redis, { prefix });
    dir = await mkdtemp(join(tmpdir(), 'memfleet-backfill-'));
  });

  afterEach(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await pool.end();
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('re-enqueues the ledger for a new backend thread by thread, after a dry run that changes nothing; resumes; restarts', async () => {
    await written('acme', 't1', ['a1', 'a2', 'a3']);
    await written('acme', 't2', ['b1']);
    await written('acme', 't2', ['b2'], 'zep');
    await written('globex', 'g', ['g1']);

    const dry = await cli([
      'backfill',
      '--since',
      '30d',
      '--to',
      'zep',
      '--tenant',
      'acme',
      '--dry-run',
    ]);
    expect(dry.code, dry.out).to.equal(0);
    expect(dry.out).to.include('dry run: nothing was changed');
    // threads, would re-enqueue, new, already on target, pending, no body, failed
    expect(tableTotals(dry.out)).to.deep.equal([2, 4, 0, 1, 0, 0, 0]);
    expect(await outbox.pendingIds('acme', 't1')).to.deep.equal([]);
    expect(await cursorKeys()).to.deep.equal([]);
    expect(await drainJobs()).to.deep.equal([]);

    const run = await cli(['backfill', '--since', '30d', '--to', 'zep', '--tenant', 'acme']);
    expect(run.code, run.out).to.equal(0);
    expect(tableTotals(run.out)).to.deep.equal([2, 4, 0, 1, 0, 0, 0]);
    expect(await outbox.pendingIds('acme', 't1')).to.deep.equal(['a1', 'a2', 'a3']);
    expect(await outbox.pendingIds('acme', 't2')).to.deep.equal(['b1']);
    expect(await outbox.pendingIds('globex', 'g')).to.deep.equal([]);
    const head = await outbox.readHead('acme', 't1', 10);
    expect(head.messages.map((m) => JSON.parse(m.body ?? '') as unknown)).to.deep.equal(
      ['a1', 'a2', 'a3'].map((id) => JSON.parse(bodyOf(`text ${id}`)) as unknown),
    );
    expect(head.messages.map((m) => m.seq)).to.deep.equal([1, 2, 3]);
    expect(await drainJobs()).to.deep.equal(['acme/t1', 'acme/t2']);
    const [key] = await cursorKeys();
    expect(JSON.parse((await redis.get(key ?? '')) ?? '')).to.deep.include({
      source: 'ledger',
      after: { tenant: 'acme', threadId: 't2', seq: 2 },
    });

    // The same command again continues after the cursor: nothing is left.
    const again = await cli(['backfill', '--since', '30d', '--to', 'zep', '--tenant', 'acme']);
    expect(again.code, again.out).to.equal(0);
    expect(again.out).to.include('continued the cursor');
    expect(tableTotals(again.out)).to.deep.equal([0, 0, 0, 0, 0, 0, 0]);
    // From the start, the messages still waiting are left alone: nothing is queued twice.
    const restart = await cli([
      'backfill',
      '--since',
      '30d',
      '--to',
      'zep',
      '--tenant',
      'acme',
      '--restart',
    ]);
    expect(restart.code, restart.out).to.equal(0);
    expect(tableTotals(restart.out)).to.deep.equal([2, 0, 0, 1, 4, 0, 0]);
    expect(await outbox.pendingIds('acme', 't1')).to.deep.equal(['a1', 'a2', 'a3']);
  });

  it('fails (exit 1) for messages without a body or of a thread now owned by another user; does the rest', async () => {
    await written('acme', 'old', ['o1', 'o2'], 'postgres', false);
    await written('acme', 'taken', ['t1']);
    await written('acme', 'fine', ['f1']);
    // The thread's records expired, and another user has taken its id since.
    await redis.del(outbox.keys.thread('acme', 'taken'), outbox.keys.message('acme', 't1'));
    await outbox.append(
      'acme',
      'taken',
      'someone-else',
      [{ clientMessageId: 'x', body: bodyOf('x') }],
      1,
    );

    const run = await cli(['backfill', '--since', '2026-01-01', '--to', 'zep']);
    expect(run.code, run.out).to.equal(1);
    expect(tableTotals(run.out)).to.deep.equal([3, 1, 0, 0, 0, 2, 1]);
    expect(run.out).to.include('acme/taken: user_id: the thread belongs to another user');
    expect(run.out).to.match(
      /memfleet: backfill incomplete: 1 message\(s\) refused; 2 message\(s\) have no body/,
    );
    expect(await outbox.pendingIds('acme', 'fine')).to.deep.equal(['f1']);
    expect(await outbox.pendingIds('acme', 'taken')).to.deep.equal(['x']);
    // A rerun finds nothing new, and still says the backfill is incomplete.
    const again = await cli(['backfill', '--since', '2026-01-01', '--to', 'zep']);
    expect(again.code, again.out).to.equal(1);
    expect(again.out).to.include('3 problem(s) in earlier runs of this cursor');
  });

  it('reads a JSONL file: rejects bad lines by number and field, redacts, adds new messages, re-enqueues final ones', async () => {
    await written('acme', 't1', ['a1', 'a2']);
    const line = (fields: object) =>
      JSON.stringify({
        tenant: 'acme',
        thread_id: 't9',
        user_id: 'u9',
        role: 'user',
        created_at: '2026-11-20T10:00:00Z',
        ...fields,
      });
    const path = join(dir, 'messages.jsonl');
    await writeFile(
      path,
      [
        line({ client_message_id: 'n1', content: 'write to jane@example.com' }),
        line({ client_message_id: 'n2', content: 'hi', role: 'robot' }),
        '',
        line({
          client_message_id: 'n3',
          content: 'card 4111 1111 1111 1111',
          metadata: { by: 'jane@example.com' },
        }),
        line({
          client_message_id: 'a1',
          thread_id: 't1',
          user_id: 'user-of-t1',
          content: 'again a1',
        }),
        '{"tenant":',
        line({ client_message_id: 'g1', tenant: 'globex', content: 'not this tenant' }),
        line({ client_message_id: 'a2', thread_id: 'elsewhere', content: 'wrong thread' }),
      ].join('\n') + '\n',
    );

    const dry = await cli([
      'backfill',
      '--file',
      path,
      '--to',
      'zep',
      '--tenant',
      'acme',
      '--dry-run',
    ]);
    expect(dry.code, dry.out).to.equal(1);
    expect(dry.out).to.include('dry run: nothing was changed');
    expect(tableTotals(dry.out)).to.deep.equal([3, 1, 2, 0, 0, 0, 1]);
    expect(await outbox.pendingIds('acme', 't9')).to.deep.equal([]);
    expect(await outbox.pendingIds('acme', 't1')).to.deep.equal([]);
    expect(await cursorKeys()).to.deep.equal([]);

    const run = await cli(['backfill', '--file', path, '--to', 'zep', '--tenant', 'acme']);
    expect(run.code, run.out).to.equal(1);
    expect(run.out).to.match(/line 2: role: /);
    expect(run.out).to.include('line 6: not valid JSON');
    expect(run.out).to.include('line 8: client_message_id: a2 belongs to another thread');
    expect(run.out).to.include('2 line(s) rejected, 2 skipped');
    expect(tableTotals(run.out)).to.deep.equal([3, 1, 2, 0, 0, 0, 1]);

    expect(await outbox.pendingIds('acme', 't9')).to.deep.equal(['n1', 'n3']);
    const t9 = await outbox.readHead('acme', 't9', 10);
    expect(t9.messages.map((m) => JSON.parse(m.body ?? '') as unknown)).to.deep.equal([
      {
        role: 'user',
        content: 'write to [EMAIL]',
        created_at: '2026-11-20T10:00:00Z',
        metadata: {},
      },
      {
        role: 'user',
        content: 'card [CARD]',
        created_at: '2026-11-20T10:00:00Z',
        metadata: { by: '[EMAIL]' },
      },
    ]);
    expect(await outbox.threadOwner('acme', 't9')).to.equal('u9');
    expect(await outbox.pendingIds('acme', 't1')).to.deep.equal(['a1']);
    const a1 = await outbox.readHead('acme', 't1', 10);
    expect(JSON.parse(a1.messages[0]?.body ?? '')).to.include({ content: 'again a1' });
    expect(await outbox.pendingIds('globex', 't9')).to.deep.equal([]);
    // Nothing in Redis holds the address in plain text.
    for (const key of await redis.keys(`${prefix}*`)) {
      const type = await redis.type(key);
      const value =
        type === 'hash'
          ? JSON.stringify(await redis.hgetall(key))
          : type === 'list'
            ? (await redis.lrange(key, 0, -1)).join()
            : type === 'string'
              ? ((await redis.get(key)) ?? '')
              : '';
      expect(value, key).to.not.include('jane@');
    }
    expect((await redis.lrange(outbox.keys.recent('acme', 't9'), 0, -1)).length).to.equal(2);
    expect(await drainJobs()).to.deep.equal(['acme/t1', 'acme/t9']);
  });

  it('refuses bad usage with exit 2 naming the option or variable', async () => {
    const cases: [string[], Record<string, string>, string][] = [
      [['backfill', '--since', '30d'], {}, "required option '--to <backend>'"],
      [['backfill', '--to', 'zep'], {}, '--since: required when backfilling from the ledger'],
      [['backfill', '--to', 'zep', '--since', '30y'], {}, '--since: expected a duration'],
      [['backfill', '--to', 'zep', '--since', '1d', '--rate', 'fast'], {}, '--rate: expected'],
      [['backfill', '--to', 'zep', '--file', join(dir, 'none.jsonl')], {}, '--file: cannot read'],
      [['backfill', '--to', 'zep', '--since', '1d', '--name', 'a b'], {}, '--name: '],
      [
        ['backfill', '--to', 'zep', '--since', '1d'],
        { DATABASE_URL: '' },
        'DATABASE_URL: required',
      ],
    ];
    for (const [args, env, message] of cases) {
      const res = await cli(args, env);
      expect(res.code, `${args.join(' ')}\n${res.out}`).to.equal(2);
      expect(res.out).to.include(message);
      expect(res.out).to.not.match(/\n\s+at /);
    }
    const help = await cli(['backfill', '--help']);
    expect(help.code).to.equal(0);
    for (const option of [
      '--since',
      '--to',
      '--file',
      '--tenant',
      '--rate',
      '--name',
      '--restart',
      '--dry-run',
    ]) {
      expect(help.out).to.include(option);
    }
    // A cursor of a ledger backfill cannot be continued by a file backfill of the same name.
    await written('acme', 't1', ['a1']);
    expect(
      (await cli(['backfill', '--since', '1d', '--to', 'zep', '--name', 'move'])).code,
    ).to.equal(0);
    const path = join(dir, 'empty.jsonl');
    await writeFile(path, '');
    const mixed = await cli(['backfill', '--file', path, '--to', 'zep', '--name', 'move']);
    expect(mixed.code, mixed.out).to.equal(2);
    expect(mixed.out).to.include('--name: cursor move belongs to a ledger backfill');
  });
});
