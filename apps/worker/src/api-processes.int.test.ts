import { expect } from 'chai';
import { promSample } from '@memfleet/testing/prom-sample';
import { Fleet, waitFor } from './fleet-harness.ts';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('API_PROCESSES: the API as a cluster of processes (real Redis and Postgres)', function () {
  this.timeout(120_000);
  const fleet = new Fleet();

  before(async () => {
    await fleet.start({ API_PROCESSES: '2' }, 1);
  });
  after(async () => {
    await fleet.stop();
  });

  const servingPids = (): number[] =>
    fleet.api
      .lines()
      .filter((l) => l.includes('"message":"api listening"'))
      .map((l) => (JSON.parse(l) as { pid: number }).pid);

  it('serves one port from every process, sums their metrics, replaces a dead one, stops all', async () => {
    await waitFor('two API processes listening', () => Promise.resolve(servingPids().length === 2));
    const pids = servingPids();
    expect(new Set(pids).size).to.equal(2);
    expect(pids).not.to.include(fleet.api.pid);

    const ids = Array.from({ length: 40 }, (_, i) => `cl-${String(i)}`);
    const answers = await Promise.all(
      ids.map((id, i) =>
        fleet.post(`cl-thread-${String(i % 8)}`, [
          { client_message_id: id, role: 'user', content: id },
        ]),
      ),
    );
    expect(answers.map((a) => a.status)).to.deep.equal(ids.map(() => 202));
    await waitFor('all written', async () => (await fleet.ledgerCount('written', 'cl-')) === 40);

    // Whichever process answers /metrics, it reports the whole cluster's count.
    for (let i = 0; i < 6; i++) {
      const text = await fleet.apiMetricsText();
      expect(promSample(text, 'memfleet_messages_accepted_total', { outcome: 'queued' })).to.equal(
        40,
      );
    }

    // A process killed outright is replaced; the port keeps answering meanwhile.
    process.kill(pids[0] ?? 0, 'SIGKILL');
    await waitFor('a replacement listening', () => Promise.resolve(servingPids().length === 3));
    expect(
      fleet.api.lines().some((l) => l.includes('api process died; starting another')),
    ).to.equal(true);
    const after = await fleet.post('cl-thread-after', [
      { client_message_id: 'cl-after', role: 'user', content: 'still here' },
    ]);
    expect(after.status).to.equal(202);

    // SIGTERM to the primary stops every process, and it exits 0.
    const live = servingPids().filter(alive);
    expect(live).to.have.length(2);
    expect(await fleet.api.stop(20_000)).to.equal(0);
    expect(live.filter(alive)).to.deep.equal([]);
  });
});
