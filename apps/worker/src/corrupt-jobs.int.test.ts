import { expect } from 'chai';
import { promSample } from '@memfleet/testing/prom-sample';
import { Job } from 'bullmq';
import { Redis } from 'ioredis';
import {
  createDrainQueue,
  DRAIN_QUEUE,
  requestDrain,
  THREAD_DRAIN,
  type DrainQueue,
} from '@memfleet/jobs/thread-drain';
import { createOutbox } from '@memfleet/outbox/outbox';
import { Fleet, waitFor } from './fleet-harness.ts';

const body = (content: string) =>
  JSON.stringify({ role: 'user', content, created_at: new Date().toISOString(), metadata: {} });

describe('corrupt jobs injected straight into Redis (fleet on postgres)', function () {
  this.timeout(180_000);
  const fleet = new Fleet();
  let redis: Redis;
  let queue: DrainQueue;

  before(async () => {
    await fleet.start(
      {
        WORKER_CONCURRENCY: '4',
        WORKER_SWEEP_INTERVAL_MS: '1000',
        WORKER_LOCK_DURATION_MS: '2000',
        WORKER_STALLED_INTERVAL_MS: '1000',
        WORKER_BACKEND_TIMEOUT_MS: '1500',
      },
      1,
    );
    redis = new Redis(fleet.env.REDIS_URL ?? '');
    queue = createDrainQueue({ connection: redis, prefix: fleet.prefix, maxMessageAttempts: 3 });
  });
  after(async () => {
    await queue.close();
    await redis.quit();
    await fleet.stop();
  });

  /** The worker is still running: it has printed no exit, and its pid answers signal 0. */
  function expectWorkerAlive(): void {
    for (const w of fleet.workers) {
      expect(() => process.kill(w.pid, 0), w.name).to.not.throw();
      expect(w.lines().join('\n'), w.name).to.not.match(/worker stopped|uncaught|unhandled/i);
    }
  }

  /** Posts a few messages on new threads and expects them written in accept order. */
  async function expectFleetKeepsWriting(name: string): Promise<void> {
    const expected = await fleet.postThreads(name, 3, 4);
    await waitFor(
      `${name}: 12 messages written`,
      async () => (await fleet.ledgerCount('written', `${name}-`)) === 12,
      60_000,
    );
    await fleet.expectStoredInOrder(expected);
  }

  it('fails thread.drain jobs with garbage data (BullMQ failed set, with the reason) and keeps going', async () => {
    const garbage: unknown[] = [{}, { tenant: 5 }, { tenant: 'acme' }, 'x'.repeat(1_000_000), null];
    const jobs = await Promise.all(
      garbage.map((data) => queue.add(THREAD_DRAIN, data as never, { attempts: 3 })),
    );
    for (const job of jobs) {
      const id = job.id ?? '';
      await waitFor(
        `job ${id} failed`,
        async () => (await queue.getJobState(id)) === 'failed',
        30_000,
      );
      const failed = await Job.fromId(queue, id);
      expect(failed?.failedReason).to.match(/^invalid thread\.drain payload/);
      // Unrecoverable: failed at once, the remaining attempts not used.
      expect(failed?.attemptsMade).to.equal(1);
    }
    const metrics = await fleet.metricsText(fleet.workers[0] ?? fleet.api);
    expect(
      promSample(metrics, 'memfleet_queue_jobs', { queue: DRAIN_QUEUE, state: 'failed' }),
    ).to.be.at.least(garbage.length);
    expectWorkerAlive();
    await expectFleetKeepsWriting('after-garbage');
  });

  it('dead-letters outbox records overwritten with a corrupt body or missing fields, and writes the rest in order', async () => {
    const outbox = createOutbox(redis, { prefix: fleet.prefix });
    await outbox.append(
      'acme',
      'mangled',
      'u1',
      ['c1', 'c2', 'c3', 'c4', 'c5'].map((id) => ({ clientMessageId: id, body: body(id) })),
      Date.now(),
    );
    // No drain is queued yet; the records are overwritten before one is.
    await redis.hset(outbox.keys.message('acme', 'c1'), 'body', '{"role":"nobody"');
    await redis.hdel(outbox.keys.message('acme', 'c2'), 'body');
    await redis.hset(outbox.keys.message('acme', 'c4'), 'body', JSON.stringify({ role: 'user' }));
    await requestDrain(queue, 'acme', 'mangled');

    await waitFor(
      'c5 settled',
      async () => (await fleet.statusOf('c5')).status === 'written',
      60_000,
    );
    for (const id of ['c1', 'c2', 'c4']) {
      const status = await fleet.statusOf(id);
      expect(status.status, id).to.equal('dead');
      expect(status.error, id).to.match(/corrupt/);
    }
    expect((await fleet.storedByThread()).get('mangled')).to.deep.equal(['c3', 'c5']);
    expectWorkerAlive();
    await expectFleetKeepsWriting('after-mangled');
  });

  it('fails a raw job hash whose data is not JSON: the sweep moves it to the failed set, the fleet keeps writing', async () => {
    const base = `${fleet.prefix}:${DRAIN_QUEUE}`;
    const id = 'raw-garbage-1';
    await redis.hset(`${base}:${id}`, {
      name: THREAD_DRAIN,
      data: '{"tenant":"acme","threadId":',
      opts: '{"attempts":3}',
      timestamp: String(Date.now()),
      delay: '0',
      priority: '0',
    });
    await redis.lpush(`${base}:wait`, id);
    await redis.zadd(`${base}:marker`, 0, '0');

    // BullMQ moves it to active and cannot build a job from it (the worker logs a "worker error");
    // the next sweep moves it to the failed set with the reason. No message is touched.
    await waitFor(
      'the raw job in the failed set',
      async () => (await queue.getJobState(id)) === 'failed',
      30_000,
    );
    expect(await redis.hget(`${base}:${id}`, 'failedReason')).to.equal(
      'unreadable job: its data is not JSON',
    );
    expect(await redis.lrange(`${base}:active`, 0, -1)).to.not.include(id);
    // The sweep logs after its script returns: the line can reach us after the state did.
    await waitFor(
      "the sweep's log line",
      () =>
        (fleet.workers[0]?.lines() ?? []).some((l) =>
          l.includes('unreadable jobs moved to failed'),
        ),
      5_000,
    );
    expectWorkerAlive();
    await expectFleetKeepsWriting('beside-raw');
    await expectFleetKeepsWriting('after-raw');
  });
});
