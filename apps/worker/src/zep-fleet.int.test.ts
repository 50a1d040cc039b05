import { expect } from 'chai';
import {
  startZepEmulator,
  type ZepEmulator,
  type ZepEmulatorOptions,
} from '@memfleet/testing/zep-emulator';
import { httpRequestJson } from '@memfleet/testing/http-request';
import { waitForValue } from '@memfleet/testing/wait-for';
import { startAppProcess } from '@memfleet/testing/app-process';
import { Fleet, KEY, waitFor } from './fleet-harness.ts';
import { ZEP_KEY, zepEnv } from './zep-fleet-env.ts';

const zepThread = (threadId: string) => `acme:${threadId}`;

/** Client message ids of a thread as Zep holds them, in Zep's order. */
function inZep(emu: ZepEmulator, threadId: string): unknown[] {
  return emu.threadMessages(zepThread(threadId)).map((m) => m.metadata?.client_message_id);
}

async function writtenAll(fleet: Fleet, prefix: string, n: number, timeoutMs = 60_000) {
  await waitFor(
    `${n} messages of ${prefix} written`,
    async () => (await fleet.ledgerCount('written', prefix)) === n,
    timeoutMs,
  );
}

/** Every message in Zep exactly once, in accept order; nothing dead. */
async function expectExactlyOnce(
  fleet: Fleet,
  emu: ZepEmulator,
  expected: Map<string, string[]>,
): Promise<void> {
  for (const [threadId, ids] of expected) {
    expect(inZep(emu, threadId), threadId).to.deep.equal(ids);
  }
  expect(await fleet.ledgerCount('dead')).to.equal(0);
}

function sumMetric(texts: string[], re: RegExp): number {
  let sum = 0;
  for (const text of texts) {
    for (const line of text.split('\n')) {
      const m = re.exec(line);
      if (m) sum += Number(m[1]);
    }
  }
  return sum;
}

async function fleetMetrics(fleet: Fleet): Promise<string[]> {
  return Promise.all(fleet.workers.map((w) => fleet.metricsText(w)));
}

const addCall = /^\/threads\/[^/]+\/messages$/;

/**
 * A fleet on Zep for one `describe`: the emulator and the fleet start before its tests and stop
 * after them. `ctx.emu` is set once the hooks have run.
 */
function zepFleet(setup: {
  emulator?: Omit<ZepEmulatorOptions, 'apiKeys'>;
  env?: Record<string, string>;
  workers: number;
  reader?: boolean;
}): { fleet: Fleet; emu: ZepEmulator } {
  const fleet = new Fleet();
  const ctx: { fleet: Fleet; emu?: ZepEmulator } = { fleet };
  before(async () => {
    const emu = await startZepEmulator({ apiKeys: [ZEP_KEY], ...setup.emulator });
    ctx.emu = emu;
    await fleet.start(zepEnv(emu, setup.env), setup.workers);
    if (setup.reader === true) await fleet.addReader();
  });
  after(async () => {
    await fleet.stop();
    await ctx.emu?.close();
  });
  return {
    fleet,
    get emu(): ZepEmulator {
      if (ctx.emu === undefined) throw new Error('the Zep emulator is not started yet');
      return ctx.emu;
    },
  };
}

describe('fleet on Zep: the real SDK against the Zep v3 emulator', function () {
  this.timeout(300_000);

  describe('load and single faults (2 workers)', () => {
    // The emulator takes less content than the adapter's limit, as a free plan would.
    const ctx = zepFleet({ emulator: { maxContentChars: 1000 }, workers: 2 });
    const { fleet } = ctx;
    afterEach(() => {
      ctx.emu.clearFaults();
      ctx.emu.setApiKeys([ZEP_KEY]);
    });

    it('writes 50 threads x 40 messages: users and threads created, in order, at most 30 per call, client_message_id in metadata', async () => {
      const expected = new Map<string, string[]>();
      await Promise.all(
        Array.from({ length: 50 }, async (_, t) => {
          const threadId = `load-${t}`;
          const ids: string[] = [];
          for (let n = 0; n < 40; n += 4) {
            const messages = Array.from({ length: 4 }, (_, k) => ({
              client_message_id: `load-${t}-${n + k}`,
              role: (n + k) % 2 === 0 ? 'user' : 'assistant',
              content: `message ${n + k} of thread ${t}`,
            }));
            const res = await fleet.post(threadId, messages);
            expect(res.status).to.equal(202);
            ids.push(...messages.map((m) => m.client_message_id));
          }
          expected.set(threadId, ids);
        }),
      );
      await writtenAll(fleet, 'load-', 2000, 120_000);
      await expectExactlyOnce(fleet, ctx.emu, expected);

      for (let t = 0; t < 50; t++) {
        expect(ctx.emu.threadOwner(zepThread(`load-${t}`))).to.equal(`acme:user-of-load-${t}`);
      }
      expect(ctx.emu.userIds().filter((u) => u.startsWith('acme:user-of-load-'))).to.have.length(
        50,
      );
      const calls = ctx.emu.requests.filter((r) => r.method === 'POST' && addCall.test(r.path));
      // The emulator answers 400 to more than 30 messages; every call was accepted.
      expect(calls.every((r) => r.status === 200)).to.equal(true);
      expect(calls.length).to.be.at.least(Math.ceil(2000 / 30));
      expect(calls.length, 'calls carried batches').to.be.below(2000);
      const texts = await fleetMetrics(fleet);
      expect(sumMetric(texts, /^memfleet_batch_size_messages_sum\{[^}]*\} (\d+)/)).to.equal(2000);
    });

    it('500 before commit: retried, stored once', async () => {
      ctx.emu.inject({ kind: 'status', status: 500, match: { method: 'POST', path: addCall } });
      const expected = await fleet.postThreads('e500b', 3, 10);
      await writtenAll(fleet, 'e500b-', 30);
      await expectExactlyOnce(fleet, ctx.emu, expected);
      expect(ctx.emu.requests.some((r) => r.status === 500)).to.equal(true);
    });

    it('500 after commit: reconciled from the thread, not sent again', async () => {
      const before = sumMetric(
        await fleetMetrics(fleet),
        /^memfleet_duplicates_skipped_total\{[^}]*source="backend"[^}]*\} (\d+)/,
      );
      ctx.emu.inject({
        kind: 'status',
        status: 500,
        commit: 'after',
        match: { method: 'POST', path: addCall },
      });
      const expected = await fleet.postThreads('e500a', 3, 10);
      await writtenAll(fleet, 'e500a-', 30);
      await expectExactlyOnce(fleet, ctx.emu, expected);
      const after = sumMetric(
        await fleetMetrics(fleet),
        /^memfleet_duplicates_skipped_total\{[^}]*source="backend"[^}]*\} (\d+)/,
      );
      expect(after - before, 'messages found in Zep on reconcile').to.be.above(0);
    });

    it('an answer slower than the timeout (the write landed): reconciled, stored once', async () => {
      ctx.emu.inject({ kind: 'delay', ms: 2500, match: { method: 'POST', path: addCall } });
      const expected = await fleet.postThreads('slow', 3, 10);
      await writtenAll(fleet, 'slow-', 30);
      await expectExactlyOnce(fleet, ctx.emu, expected);
    });

    it('a write that lands at Zep after the worker timed out: the retry waits it out, stored once', async () => {
      // Zep stores the batch 1.5 s after it arrived; the worker gives up after 1 s and must not
      // reconcile (and resend) before the write has landed.
      ctx.emu.inject({
        kind: 'delay',
        ms: 1500,
        commit: 'after',
        match: { method: 'POST', path: addCall },
      });
      const expected = await fleet.postThreads('late', 1, 10);
      await writtenAll(fleet, 'late-', 10);
      const late = ctx.emu.requests.find(
        (r) => r.fault === 'delay' && r.path === '/threads/acme:late-0/messages',
      );
      expect(late?.answeredAt, 'the worker gave up on the slow call').to.equal(undefined);
      // The slow write lands 1.5 s after it arrived; look only once it has.
      const landed = (late?.arrivedAt ?? 0) + 1500 + 200;
      await waitFor('the slow write to land', () => Promise.resolve(Date.now() > landed), 10_000);
      await expectExactlyOnce(fleet, ctx.emu, expected);
    });

    it('a dropped connection, before and after the write landed: stored once', async () => {
      ctx.emu.inject({ kind: 'drop', match: { method: 'POST', path: addCall } });
      ctx.emu.inject({ kind: 'drop', commit: 'after', match: { method: 'POST', path: addCall } });
      const expected = await fleet.postThreads('drop', 3, 10);
      await writtenAll(fleet, 'drop-', 30);
      await expectExactlyOnce(fleet, ctx.emu, expected);
      expect(ctx.emu.requests.filter((r) => r.fault === 'drop')).to.have.length(2);
    });

    it('429 with Retry-After: 2 three times in a row: the whole fleet waits each one out, no attempt used', async () => {
      const limited = () => ctx.emu.requests.filter((r) => r.fault === 'rate_limit');
      ctx.emu.inject({ kind: 'rate_limit', retryAfterS: 2 });
      const expected = await fleet.postThreads('rl', 4, 10);
      // Each next 429 is armed while the fleet waits out the previous one, once calls that were
      // already on the wire have arrived, so the three come one Retry-After apart.
      for (let n = 1; n <= 3; n++) {
        await waitFor(`429 number ${n}`, () => Promise.resolve(limited().length >= n), 30_000);
        const settled = (limited()[n - 1]?.answeredAt ?? 0) + 300;
        await waitFor('calls on the wire', () => Promise.resolve(Date.now() > settled), 5000);
        if (n < 3) ctx.emu.inject({ kind: 'rate_limit', retryAfterS: 2 });
      }
      await writtenAll(fleet, 'rl-', 40);
      await expectExactlyOnce(fleet, ctx.emu, expected);

      const answers = limited().map((r) => r.answeredAt ?? 0);
      expect(answers).to.have.length(3);
      for (const t of answers) {
        // Calls already on the wire when the 429 was answered may still arrive just after it.
        const inside = ctx.emu.requests.filter(
          (r) => r.arrivedAt > t + 250 && r.arrivedAt < t + 2000 - 50,
        );
        expect(inside, `requests inside the Retry-After window of ${t}`).to.deep.equal([]);
      }
      // The fleet sat out each Retry-After before its next call.
      expect((answers[1] ?? 0) - (answers[0] ?? 0)).to.be.at.least(2000 - 50);
      expect((answers[2] ?? 0) - (answers[1] ?? 0)).to.be.at.least(2000 - 50);

      const texts = await fleetMetrics(fleet);
      expect(
        sumMetric(texts, /^memfleet_backend_rate_limited_total\{[^}]*\} (\d+)/),
      ).to.be.at.least(3);
      expect(
        sumMetric(texts, /^memfleet_breaker_transitions_total\{[^}]*to="open"[^}]*\} (\d+)/),
      ).to.equal(0);
      for (const ids of expected.values()) {
        for (const id of ids) {
          expect((await fleet.statusOf(id)).attempts, id).to.equal(1);
        }
      }
    });

    it('401 for a while, then OK: writes held with the reason shown, none lost, resumed', async () => {
      ctx.emu.setApiKeys(['a-rotated-key']);
      const expected = await fleet.postThreads('auth', 3, 5);
      const first = expected.get('auth-0')?.[0] ?? '';
      await waitFor(
        'the hold to show in the status',
        async () => /credentials/.test((await fleet.statusOf(first)).error ?? ''),
        30_000,
      );
      expect((await fleet.statusOf(first)).status).to.equal('queued');
      await waitFor(
        'the auth alert metric',
        async () =>
          sumMetric(await fleetMetrics(fleet), /^memfleet_backend_auth_failing\{[^}]*\} (\d+)/) > 0,
        30_000,
      );
      const heldSince = Date.now();
      // Probes keep failing for a few seconds; writes stay held and nothing is dead-lettered.
      await waitFor(
        'two failed probes',
        () =>
          Promise.resolve(
            ctx.emu.requests.filter((r) => r.status === 401 && r.arrivedAt > heldSince).length >= 2,
          ),
        30_000,
      );
      expect(await fleet.ledgerCount('written', 'auth-')).to.equal(0);
      expect(await fleet.ledgerCount('dead', 'auth-')).to.equal(0);
      ctx.emu.setApiKeys([ZEP_KEY]);
      await writtenAll(fleet, 'auth-', 15);
      await expectExactlyOnce(fleet, ctx.emu, expected);
      expect((await fleet.statusOf(first)).error).to.equal(undefined);
      const texts = await fleetMetrics(fleet);
      expect(sumMetric(texts, /^memfleet_backend_auth_failing\{[^}]*\} (\d+)/)).to.equal(0);
      expect(sumMetric(texts, /^memfleet_backend_auth_rejected_total\{[^}]*\} (\d+)/)).to.be.above(
        0,
      );
    });

    it('a poison message goes dead with Zep’s reason; its thread continues in order behind it', async () => {
      const ids = ['poison-0', 'poison-1', 'poison-2', 'poison-3', 'poison-4'];
      const res = await fleet.post(
        'poison',
        ids.map((id) => ({
          client_message_id: id,
          role: 'user',
          content: id === 'poison-2' ? 'x'.repeat(1500) : `fine ${id}`,
        })),
      );
      expect(res.status).to.equal(202);
      const other = await fleet.postThreads('healthy', 2, 5);
      await waitFor(
        'the poison message dead',
        async () => (await fleet.status('poison-2')) === 'dead',
        30_000,
      );
      await writtenAll(fleet, 'poison', 4);
      await writtenAll(fleet, 'healthy-', 10);
      expect(inZep(ctx.emu, 'poison')).to.deep.equal([
        'poison-0',
        'poison-1',
        'poison-3',
        'poison-4',
      ]);
      for (const [threadId, want] of other) expect(inZep(ctx.emu, threadId)).to.deep.equal(want);
      const status = await fleet.statusOf('poison-2');
      expect(status.status).to.equal('dead');
      expect(status.error).to.match(/answered 400: message content exceeds 1000 characters/);
    });
  });

  describe('a 60-second outage under steady load', () => {
    // Few attempts: without the breaker, a minute of 503s would dead-letter messages.
    const ctx = zepFleet({
      env: {
        WORKER_MAX_ATTEMPTS: '6',
        WORKER_BREAKER_FAILURES: '3',
        WORKER_BREAKER_COOLDOWN_MS: '2000',
      },
      workers: 2,
    });
    const { fleet } = ctx;

    it('holds every message while Zep answers 503, dead-letters none, and drains all after', async () => {
      const expected = new Map<string, string[]>();
      let posting = true;
      let sent = 0;
      const load = (async () => {
        while (posting) {
          const t = sent % 10;
          const id = `outage-${t}-${Math.floor(sent / 10)}`;
          const res = await fleet.post(`outage-${t}`, [
            { client_message_id: id, role: 'user', content: `steady ${sent}` },
          ]);
          expect(res.status).to.equal(202);
          expected.set(`outage-${t}`, [...(expected.get(`outage-${t}`) ?? []), id]);
          sent++;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      })();
      try {
        await waitFor('steady writes', () => Promise.resolve(sent >= 20), 30_000);
        const outageStart = Date.now();
        ctx.emu.inject({ kind: 'status', status: 503, times: Infinity });
        await waitFor(
          'the outage to last 60 s',
          () => Promise.resolve(Date.now() - outageStart >= 60_000),
          70_000,
        );
        ctx.emu.clearFaults();
        const outageEnd = Date.now();
        const during = ctx.emu.requests.filter(
          (r) => r.arrivedAt >= outageStart && r.arrivedAt < outageEnd,
        );
        // The open breaker lets one probe through per cooldown (2 s), not a retry per message.
        expect(during.length, 'requests during the outage').to.be.below(80);
        expect(during.length).to.be.above(0);
        expect(await fleet.ledgerCount('dead')).to.equal(0);
        const texts = await fleetMetrics(fleet);
        expect(
          sumMetric(texts, /^memfleet_breaker_transitions_total\{[^}]*to="open"[^}]*\} (\d+)/),
        ).to.be.above(0);
        const sentAtRecovery = sent;
        await waitFor(
          'steady writes after the outage',
          () => Promise.resolve(sent >= sentAtRecovery + 30),
          30_000,
        );
      } finally {
        posting = false;
        await load;
      }
      await writtenAll(fleet, 'outage-', sent, 120_000);
      await expectExactlyOnce(fleet, ctx.emu, expected);
      // The breaker closed again after the outage. (Its state at the very end may read half-open:
      // calls that timed out in the catch-up burst can reopen it, and with nothing left to write
      // no probe comes to close it.)
      const texts = await fleetMetrics(fleet);
      expect(
        sumMetric(texts, /^memfleet_breaker_transitions_total\{[^}]*to="closed"[^}]*\} (\d+)/),
      ).to.be.above(0);
    });
  });

  describe('dead letters replayed after an outage', () => {
    // One attempt and no breaker: every write of the outage goes dead at once.
    const ctx = zepFleet({
      env: { WORKER_MAX_ATTEMPTS: '1', WORKER_BREAKER_FAILURES: '10000' },
      workers: 2,
    });
    const { fleet } = ctx;

    it('dlq replay --all writes 500 dead-lettered messages, in thread order, exactly once', async () => {
      ctx.emu.inject({
        kind: 'status',
        status: 503,
        times: Infinity,
        match: { method: 'POST', path: addCall },
      });
      const expected = await fleet.postThreads('dlq', 10, 50);
      await waitFor(
        '500 messages dead',
        async () => (await fleet.ledgerCount('dead', 'dlq-')) === 500,
        60_000,
      );
      expect(inZep(ctx.emu, 'dlq-0')).to.deep.equal([]);
      ctx.emu.clearFaults();

      const cli = startAppProcess('apps/cli/src/main.ts', {
        name: 'memfleet',
        args: ['dlq', 'replay', '--tenant', 'acme', '--all'],
        env: { REDIS_URL: fleet.env.REDIS_URL ?? '', REDIS_KEY_PREFIX: fleet.prefix },
      });
      expect(await cli.waitForExit(60_000)).to.equal(0);
      expect(cli.lines().join('\n')).to.match(/total\s*│\s*500/);
      await writtenAll(fleet, 'dlq-', 500, 60_000);
      expect(await fleet.ledgerCount('dead', 'dlq-')).to.equal(0);
      for (const [threadId, ids] of expected) {
        expect(inZep(ctx.emu, threadId), threadId).to.deep.equal(ids);
      }
    });
  });

  describe('kill -9 after Zep acknowledged a batch', () => {
    const ctx = zepFleet({ workers: 0 });
    const { fleet } = ctx;

    it('does not write the batch again', async () => {
      const victim = await fleet.addWorker('victim', zepEnv(ctx.emu));
      let killed = false;
      ctx.emu.inject({
        kind: 'hook',
        match: { method: 'POST', path: addCall },
        run: async () => {
          // Zep has stored the batch; the worker dies before it hears so or completes the job.
          await victim.kill9();
          await victim.waitForExit(10_000);
          killed = true;
        },
      });
      const expected = await fleet.postThreads('kill', 1, 10);
      await waitFor('the kill', () => Promise.resolve(killed), 30_000);
      expect(inZep(ctx.emu, 'kill-0').length).to.be.above(0);
      const survivor = await fleet.addWorker('survivor', zepEnv(ctx.emu));
      await writtenAll(fleet, 'kill-', 10);
      await expectExactlyOnce(fleet, ctx.emu, expected);
      const skipped = sumMetric(
        [await fleet.metricsText(survivor)],
        /^memfleet_duplicates_skipped_total\{[^}]*source="backend"[^}]*\} (\d+)/,
      );
      await survivor.stop(15_000);
      expect(skipped, 'messages the survivor found already in Zep').to.be.above(0);
    });
  });
  describe('live flags (API, reader, 2 workers)', () => {
    const ctx = zepFleet({
      env: {
        WORKER_AUTH_RETRY_MS: '300',
        FLAGS_DOWNGRADE_AUTH_FAILURES: '3',
        FLAGS_DOWNGRADE_MS: '60000',
      },
      workers: 2,
      reader: true,
    });
    const { fleet } = ctx;
    afterEach(async () => {
      ctx.emu.setApiKeys([ZEP_KEY]);
      expect((await fleet.adminFlags({ mode: null, downgrade: null })).status).to.equal(200);
    });

    /** Prometheus text of every process: the API first, then the workers. */
    const everyProcess = async () => [await fleet.apiMetricsText(), ...(await fleetMetrics(fleet))];
    const modeIs = (mode: string) =>
      new RegExp(`^memfleet_memory_mode\\{mode="${mode}",[^}]*\\} 1$`, 'm');

    it('a PUT of mode off reaches the API, the reader and every worker within 2 s', async () => {
      for (const text of await everyProcess()) expect(text).to.match(modeIs('read_write'));
      const t0 = Date.now();
      const res = await fleet.adminFlags({ mode: 'off' });
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.include({ mode: 'off', source: 'redis' });
      const seen: number[] = [];
      const texts = [
        () => fleet.apiMetricsText(),
        () => fleet.readerMetricsText(),
        ...fleet.workers.map((w) => () => fleet.metricsText(w)),
      ];
      await Promise.all(
        texts.map(async (text, i) => {
          await waitFor(
            `process ${i} to report mode off`,
            async () => modeIs('off').test(await text()),
            10_000,
          );
          seen[i] = Date.now() - t0;
        }),
      );
      const slowest = Math.max(...seen);
      console.log(
        `      mode off seen by api, reader, worker-0, worker-1 after ${seen.join(', ')} ms`,
      );
      expect(slowest, 'propagation to the slowest process').to.be.at.most(2000);
    });

    it('with mode off, messages stay queued and nothing reaches Zep; after mode null all are written once, in order', async () => {
      await fleet.adminFlags({ mode: 'off' });
      await waitFor(
        'every worker to be in mode off',
        async () => (await fleetMetrics(fleet)).every((t) => modeIs('off').test(t)),
        10_000,
      );
      const expected = await fleet.postThreads('off', 3, 5);
      const ids = [...expected.values()].flat();
      const inZepNow = () => [...expected.keys()].flatMap((t) => inZep(ctx.emu, t));
      // The drains ran and handed their threads back, rather than not running at all.
      await waitFor(
        'drains held for mode off',
        async () =>
          sumMetric(
            await fleetMetrics(fleet),
            /^memfleet_drains_paused_total\{[^}]*reason="mode_off"[^}]*\} (\d+)/,
          ) >= 3,
        10_000,
      );
      const heldFrom = Date.now();
      // For 3 s (more than one retry of each held drain), nothing is written and nothing is lost.
      await waitFor(
        'three seconds of mode off',
        async () => {
          expect(inZepNow()).to.deep.equal([]);
          expect(await fleet.ledgerCount('written', 'off-')).to.equal(0);
          return Date.now() - heldFrom >= 3000;
        },
        10_000,
      );
      for (const id of ids) {
        const status = await fleet.statusOf(id);
        expect(status.status, id).to.equal('queued');
        expect(status.attempts ?? 0, id).to.equal(0);
      }

      expect((await fleet.adminFlags({ mode: null })).body).to.deep.include({ mode: 'read_write' });
      await writtenAll(fleet, 'off-', ids.length, 30_000);
      await expectExactlyOnce(fleet, ctx.emu, expected);
      for (const id of ids) expect((await fleet.statusOf(id)).attempts, id).to.equal(1);
    });

    it('sustained 401s downgrade reads fleet-wide; the restored key drains every message once', async () => {
      const downgrades = /^memfleet_read_downgrades_total\{[^}]*reason="auth"[^}]*\} (\d+)/;
      const before = sumMetric(await fleetMetrics(fleet), downgrades);
      ctx.emu.setApiKeys(['other']);
      const expected = await fleet.postThreads('down', 2, 5);
      await waitFor(
        'the read downgrade',
        async () => {
          const view = (await fleet.adminFlags()).body as { downgrade: { reason: string } | null };
          return view.downgrade?.reason === 'auth';
        },
        30_000,
      );
      const view = (await fleet.adminFlags()).body as { downgrade: { until: string } };
      expect(Date.parse(view.downgrade.until) - Date.now()).to.be.within(30_000, 60_000);
      const texts = await fleetMetrics(fleet);
      expect(sumMetric(texts, downgrades) - before, 'downgrades started').to.be.at.least(1);
      await waitFor(
        'every process to report the downgrade',
        async () =>
          (await everyProcess()).every(
            (t) => /^memfleet_read_downgraded\{[^}]*\} 1$/m.test(t) && modeIs('write_only').test(t),
          ),
        10_000,
      );
      expect(await fleet.ledgerCount('written', 'down-')).to.equal(0);
      expect(await fleet.ledgerCount('dead', 'down-')).to.equal(0);
      // The reader (on its next flags reload) answers from memfleet's own record, and says why.
      const read = await waitForValue(
        'the reader to see the downgrade',
        () =>
          httpRequestJson(`${fleet.readerUrl}/v1/threads/down-0/context?user_id=user-of-down-0`, {
            headers: { authorization: `Bearer ${KEY}` },
          }),
        (res) => (res.json as { mode?: string }).mode === 'write_only',
        10_000,
      );
      expect(read.json).to.deep.include({
        used: false,
        mode: 'write_only',
        source: 'fallback',
        reason: 'mode_off',
      });
      expect((read.json as { messages: unknown[] }).messages).to.have.length(4);

      ctx.emu.setApiKeys([ZEP_KEY]);
      await writtenAll(fleet, 'down-', 10, 30_000);
      await expectExactlyOnce(fleet, ctx.emu, expected);
      // The good probe reset the fleet's count of failures.
      expect(await fleet.redis.get(`${fleet.prefix}:flags:auth_failures`)).to.equal(null);
    });
  });
});
