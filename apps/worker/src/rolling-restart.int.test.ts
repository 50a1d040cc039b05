import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { QueueEvents } from 'bullmq';
import { createDrainQueue, DRAIN_QUEUE } from '@memfleet/jobs/thread-drain';
import type { AppProcess } from '@memfleet/testing/app-process';
import { startZepEmulator, type ZepEmulator } from '@memfleet/testing/zep-emulator';
import { Fleet, waitFor } from './fleet-harness.ts';
import { ZEP_KEY, zepEnv } from './zep-fleet-env.ts';

const WORKERS = 3;
const CONCURRENCY = 4;
/** Every drain slot of the fleet. */
const SLOTS = WORKERS * CONCURRENCY;
const THREADS = 24;
const POSTERS = 3;
/** Bounds the load: posts per poster, whatever happens. */
const MAX_POSTS = 3000;
/** The zep emulator's latency on every call. */
const LATENCY_MS = 50;
/** The load's pace: each poster's pause between two posts. */
const POST_EVERY_MS = 20;
const addCall = /^\/threads\/[^/]+\/messages$/;

/**
 * Holds the emulator's answers to add calls (the messages are stored, the answer waits) while
 * `hold()` is in force, and counts the calls waiting.
 */
function addCallGate(emu: ZepEmulator) {
  let held: Promise<void> | undefined;
  let release: (() => void) | undefined;
  let waiting = 0;
  emu.inject({
    kind: 'hook',
    times: Infinity,
    match: { method: 'POST', path: addCall },
    async run() {
      await sleep(LATENCY_MS);
      if (held === undefined) return;
      waiting += 1;
      await held;
      waiting -= 1;
    },
  });
  return {
    get waiting() {
      return waiting;
    },
    hold() {
      held = new Promise((resolve) => (release = resolve));
    },
    release() {
      held = undefined;
      release?.();
    },
  };
}

describe('rolling restart: SIGTERM to each of 3 workers in turn under steady load (Zep, 50 ms a call)', function () {
  // Below the lock duration and the stall interval set here: a drain job orphaned by a restart
  // could not be recovered before this test times out.
  this.timeout(100_000);
  const fleet = new Fleet();
  let emu: ZepEmulator;
  let gate: ReturnType<typeof addCallGate> | undefined;

  before(async () => {
    emu = await startZepEmulator({ apiKeys: [ZEP_KEY] });
    gate = addCallGate(emu);
    emu.inject({ kind: 'delay', ms: LATENCY_MS, commit: 'after', times: Infinity });
    await fleet.start(
      zepEnv(emu, {
        WORKER_CONCURRENCY: String(CONCURRENCY),
        // A job or thread lock left by a worker that went away would wait this long.
        WORKER_LOCK_DURATION_MS: '240000',
        WORKER_STALLED_INTERVAL_MS: '120000',
        // Nor can the sweep rescue a thread: its first look at stuck threads is far past the test.
        WORKER_SWEEP_INTERVAL_MS: '120000',
        // Drains never yield on their own, so every yielded drain was handed back by a worker
        // shutting down.
        WORKER_DRAIN_SLICE_MS: '120000',
        // Held add calls stay in flight instead of timing out.
        WORKER_BACKEND_TIMEOUT_MS: '30000',
      }),
      WORKERS,
    );
  });
  after(async () => {
    gate?.release();
    await fleet.stop();
    await emu.close();
  });

  it('loses nothing, writes nothing twice, and leaves no job to the stall check', async () => {
    const addCalls = gate;
    if (addCalls === undefined) throw new Error('the emulator did not start');
    const redisUrl = new URL(fleet.env.REDIS_URL ?? '');
    const events = new QueueEvents(DRAIN_QUEUE, {
      connection: { host: redisUrl.hostname, port: Number(redisUrl.port) },
      prefix: fleet.prefix,
    });
    const queue = createDrainQueue({
      connection: fleet.redis,
      prefix: fleet.prefix,
      maxMessageAttempts: 10,
    });
    const stalled: string[] = [];
    const failed: string[] = [];
    let yielded = 0;
    events.on('stalled', ({ jobId }) => stalled.push(jobId));
    events.on('failed', ({ jobId, failedReason }) => failed.push(`${jobId}: ${failedReason}`));
    // A drain that returns 'yielded' left messages in its thread and queued the thread again.
    events.on('completed', ({ returnvalue }) => {
      if ((returnvalue as { outcome?: string } | null)?.outcome === 'yielded') yielded += 1;
    });

    const accepted = new Map<string, string[]>();
    let acceptedCount = 0;
    let loadOn = true;
    /** Each poster owns its threads, so a thread's accept order is the order its poster sent. */
    const poster = async (p: number): Promise<void> => {
      const threads = Array.from(
        { length: THREADS / POSTERS },
        (_, k) => `roll-${k * POSTERS + p}`,
      );
      for (let i = 0; loadOn && i < MAX_POSTS; i++) {
        const threadId = threads[i % threads.length] ?? '';
        const ids = [`${threadId}-${2 * i}`, `${threadId}-${2 * i + 1}`];
        const res = await fleet.post(
          threadId,
          ids.map((id) => ({ client_message_id: id, role: 'user', content: id })),
        );
        expect(res.status, `post to ${threadId}`).to.equal(202);
        accepted.set(threadId, [...(accepted.get(threadId) ?? []), ...ids]);
        acceptedCount += ids.length;
        await sleep(POST_EVERY_MS);
      }
    };

    await events.waitUntilReady();
    const load = Promise.all(Array.from({ length: POSTERS }, (_, p) => poster(p)));
    // Awaited below; a failed post fails the test there.
    load.catch(() => undefined);
    const restarts: { exit: number | null; yielded: number; acceptedMeanwhile: number }[] = [];
    try {
      await waitFor(
        'the load under way',
        async () => (await fleet.ledgerCount('written')) > 100,
        30_000,
      );
      for (let i = 0; i < WORKERS; i++) {
        const victim = fleet.workers[i] as AppProcess;
        // The signal lands while every drain slot of the fleet, the victim's included, has a batch
        // on the wire: the emulator holds the add calls' answers until then.
        addCalls.hold();
        await waitFor(
          `all ${SLOTS} drain slots waiting on an add call`,
          () => addCalls.waiting >= SLOTS,
          30_000,
        );
        const yieldedBefore = yielded;
        const acceptedBefore = acceptedCount;
        victim.signal('SIGTERM');
        await victim.waitForLine(/"message":"worker stopping"/, 10_000);
        addCalls.release();
        const exit = await victim.waitForExit(30_000);
        await fleet.addWorker(`worker-${WORKERS + i}`);
        restarts.push({
          exit,
          yielded: yielded - yieldedBefore,
          acceptedMeanwhile: acceptedCount - acceptedBefore,
        });
      }
    } finally {
      addCalls.release();
      loadOn = false;
      await load.finally(() => undefined);
    }

    try {
      await waitFor(
        `all ${acceptedCount} accepted messages written`,
        async () => (await fleet.ledgerCount('written')) === acceptedCount,
        30_000,
      );
      // Every drain job finished, so no stalled event can still be on its way.
      await waitFor(
        'no drain job left',
        async () => {
          const counts = await queue.getJobCounts('active', 'waiting', 'delayed', 'prioritized');
          return Object.values(counts).every((n) => n === 0);
        },
        10_000,
      );
    } finally {
      await events.close();
      await queue.close();
    }

    for (const [i, r] of restarts.entries()) {
      expect(r.exit, `worker-${i} exit code`).to.equal(0);
      // The victim finished the batch it had on the wire and handed its threads back at once.
      expect(r.yielded, `drains handed back by worker-${i}`).to.be.at.least(1);
      expect(r.acceptedMeanwhile, `messages accepted while worker-${i} restarted`).to.be.above(0);
    }
    for (const w of fleet.workers.slice(0, WORKERS)) {
      const lines = w.lines();
      expect(
        lines.some((l) => l.includes('"message":"worker stopped"')),
        w.name,
      ).to.equal(true);
      expect(
        lines.filter((l) => l.includes('shutdown timeout')),
        w.name,
      ).to.deep.equal([]);
    }
    expect(stalled, 'stalled drain jobs').to.deep.equal([]);
    expect(failed, 'failed drain jobs').to.deep.equal([]);
    expect(await fleet.ledgerCount('dead')).to.equal(0);
    for (const [threadId, ids] of accepted) {
      const inZep = emu
        .threadMessages(`acme:${threadId}`)
        .map((m) => m.metadata?.client_message_id);
      expect(inZep, threadId).to.deep.equal(ids);
    }
  });
});
