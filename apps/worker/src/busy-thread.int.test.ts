import { expect } from 'chai';
import { startZepEmulator, type ZepEmulator } from '@memfleet/testing/zep-emulator';
import { Fleet, waitFor } from './fleet-harness.ts';
import { ZEP_KEY, zepEnv } from './zep-fleet-env.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a thread whose drain is busy when its next messages arrive (Zep emulator)', function () {
  this.timeout(120_000);
  const fleet = new Fleet();
  let emu: ZepEmulator;

  before(async () => {
    emu = await startZepEmulator({ apiKeys: [ZEP_KEY] });
    // A 30 s thread lock and no sweep within the test: only the drains themselves can write.
    await fleet.start(
      zepEnv(emu, {
        WORKER_LOCK_DURATION_MS: '30000',
        WORKER_STALLED_INTERVAL_MS: '30000',
        WORKER_BACKEND_TIMEOUT_MS: '5000',
        WORKER_SWEEP_INTERVAL_MS: '600000',
      }),
      1,
    );
  });
  after(async () => {
    await fleet.stop();
    await emu.close();
  });

  const send = async (id: string) => {
    const res = await fleet.post('busy', [{ client_message_id: id, role: 'user', content: id }]);
    expect(res.status).to.equal(202);
  };
  const written = async (ids: string[]) =>
    (await Promise.all(ids.map((id) => fleet.status(id)))).every((s) => s === 'written');

  it('writes them with the running drain or the next, never after the lock would expire', async () => {
    await send('b0');
    await waitFor('b0 written', () => written(['b0']), 10_000);
    emu.inject({ kind: 'delay', ms: 400, commit: 'after', times: Infinity });

    // b2 and b3 come while b1's drain waits on Zep: the drain that finds the thread held ends,
    // and b1's drain writes them before it lets go. The lock would hold them 30 s otherwise.
    await send('b1');
    await sleep(100);
    await send('b2');
    await sleep(100);
    await send('b3');
    await waitFor('b1..b3 written', () => written(['b1', 'b2', 'b3']), 10_000);
    // Right after that drain let go: a new drain takes it at once.
    await send('b4');
    await waitFor('b4 written', () => written(['b4']), 10_000);
    emu.clearFaults();

    expect(emu.threadMessages('acme:busy').map((m) => m.metadata?.client_message_id)).to.deep.equal(
      ['b0', 'b1', 'b2', 'b3', 'b4'],
    );
    const metrics = await fleet.metricsText(fleet.workers[0] ?? fleet.api);
    const delayed =
      /memfleet_queue_jobs\{[^}]*queue="thread-drain"[^}]*state="delayed"[^}]*\} (\d+)/.exec(
        metrics,
      );
    expect(Number(delayed?.[1] ?? 'NaN')).to.equal(0);
  });
});
