import { expect } from 'chai';
import { tableTotals } from '@memfleet/testing/cli-table';
import { startAppProcess, type AppProcess } from '@memfleet/testing/app-process';
import { startZepEmulator, type ZepEmulator } from '@memfleet/testing/zep-emulator';
import { Fleet, waitFor } from './fleet-harness.ts';
import { FAST_WORKER_ENV } from './zep-fleet-env.ts';

const CLI = 'apps/cli/src/main.ts';
const ZEP_KEY = 'backfill-zep-key';

describe('fleet: backfill from postgres to Zep (the real CLI, workers and SDK)', function () {
  this.timeout(240_000);
  const fleet = new Fleet();
  let emu: ZepEmulator;

  before(async () => {
    emu = await startZepEmulator({ apiKeys: [ZEP_KEY] });
    await fleet.start(FAST_WORKER_ENV, 1);
  });
  after(async () => {
    await fleet.stop();
    await emu.close();
  });

  function cli(args: string[]): AppProcess {
    return startAppProcess(CLI, { name: 'memfleet', args, env: fleet.env });
  }

  async function run(args: string[]): Promise<{ code: number | null; out: string }> {
    const proc = cli(args);
    const code = await proc.waitForExit(60_000);
    return { code, out: proc.lines().join('\n') };
  }

  const inZep = (threadId: string) =>
    emu.threadMessages(`acme:${threadId}`).map((m) => m.metadata?.client_message_id);

  async function ledgerOn(backend: string): Promise<number> {
    const res = await fleet.pg.query<{ n: string }>(
      `SELECT count(*) AS n FROM ledger WHERE status = 'written' AND backend = $1`,
      [backend],
    );
    return Number(res.rows[0]?.n ?? 0);
  }

  async function cursor(): Promise<{ after: { threadId: string } } | undefined> {
    const keys = await fleet.redis.keys(`${fleet.prefix}:backfill:*`);
    const key = keys[0];
    if (key === undefined) return undefined;
    return JSON.parse((await fleet.redis.get(key)) ?? 'null') as { after: { threadId: string } };
  }

  it('writes every message to Zep once, in thread order; a dry run changes nothing; a killed run resumes', async () => {
    // Written by a fleet on postgres: 8 threads of 10, and one message with an e-mail address.
    const expected = await fleet.postThreads('bf', 8, 10);
    const pii = await fleet.post('bf-pii', [
      { client_message_id: 'pii-1', role: 'user', content: 'mail me at jane@example.com' },
    ]);
    expect(pii.status).to.equal(202);
    expected.set('bf-pii', ['pii-1']);
    await waitFor(
      '81 messages written to postgres',
      async () => (await ledgerOn('postgres')) === 81,
      60_000,
    );
    await fleet.expectStoredInOrder(expected);
    // The ledger keeps the message as written: redacted.
    const kept = await fleet.pg.query<{ body: { content: string } }>(
      `SELECT body FROM ledger WHERE client_message_id = 'pii-1'`,
    );
    expect(kept.rows[0]?.body.content).to.equal('mail me at [EMAIL]');

    // The fleet switches to Zep: every postgres worker stops, a Zep worker starts.
    for (const w of fleet.workers) await w.stop(15_000);
    await fleet.addWorker('zep-worker', {
      MEMORY_BACKEND: 'zep',
      ZEP_API_URL: emu.url,
      ZEP_API_KEY: ZEP_KEY,
    });

    const dry = await run(['backfill', '--since', '30d', '--to', 'zep', '--dry-run']);
    expect(dry.code, dry.out).to.equal(0);
    // threads, would re-enqueue, new, already on target, pending, no body, failed
    expect(tableTotals(dry.out)).to.deep.equal([9, 81, 0, 0, 0, 0, 0]);
    expect(await cursor()).to.equal(undefined);
    for (const threadId of expected.keys()) {
      expect(await fleet.redis.llen(`${fleet.prefix}:ob:acme:${threadId}`), threadId).to.equal(0);
    }
    expect(await ledgerOn('zep')).to.equal(0);
    expect(emu.threadIds()).to.deep.equal([]);

    // At 20 messages a second the run takes seconds: it is killed once a thread or two are done.
    const first = cli(['backfill', '--since', '30d', '--to', 'zep', '--rate', '20/s']);
    await waitFor('a thread done', async () => (await cursor()) !== undefined, 30_000);
    await first.kill9();
    const stoppedAt = await cursor();
    expect(stoppedAt?.after.threadId, 'killed before the last thread').to.not.equal('bf-pii');

    const rest = await run(['backfill', '--since', '30d', '--to', 'zep', '--rate', '20/s']);
    expect(rest.code, rest.out).to.equal(0);
    expect(rest.out).to.include('continued the cursor');
    const [threadsAfter] = tableTotals(rest.out);
    expect(threadsAfter).to.be.below(9);

    await waitFor('81 messages written to Zep', async () => (await ledgerOn('zep')) === 81, 90_000);
    for (const [threadId, ids] of expected) expect(inZep(threadId), threadId).to.deep.equal(ids);
    expect(emu.threadMessages('acme:bf-pii')[0]?.content).to.equal('mail me at [EMAIL]');
    expect(await fleet.ledgerCount('dead')).to.equal(0);

    // From the start again: everything is on Zep already, nothing is queued.
    const again = await run(['backfill', '--since', '30d', '--to', 'zep', '--restart']);
    expect(again.code, again.out).to.equal(0);
    expect(tableTotals(again.out)).to.deep.equal([9, 0, 0, 81, 0, 0, 0]);
    for (const threadId of expected.keys()) {
      expect(await fleet.redis.llen(`${fleet.prefix}:ob:acme:${threadId}`), threadId).to.equal(0);
    }
    for (const [threadId, ids] of expected) expect(inZep(threadId), threadId).to.deep.equal(ids);
  });
});
