import { expect } from 'chai';
import { Redis } from 'ioredis';
import { HttpError } from '@memfleet/http/http-error';
import { createDrainQueue, type DrainQueue } from '@memfleet/jobs/thread-drain';
import { createOutbox, type Outbox } from '@memfleet/outbox/outbox';
import { testRedisUrl, uniquePrefix } from '@memfleet/testing/fixtures';
import { dumpRedisPrefix } from '@memfleet/testing/store-dump';
import { createMessageIntake, type IntakeCounter } from './accept-messages.ts';

/** Counts what the intake reports, per label value. */
function tally<L extends string>(label: L): IntakeCounter<L> & { seen: Map<string, number> } {
  const seen = new Map<string, number>();
  return {
    seen,
    inc(labels, value) {
      const key = labels[label] ?? '';
      seen.set(key, (seen.get(key) ?? 0) + value);
    },
  };
}

describe('message intake (real Redis)', () => {
  let redis: Redis;
  let prefix: string;
  let outbox: Outbox;
  let queue: DrainQueue;

  beforeEach(async () => {
    redis = new Redis(await testRedisUrl());
    prefix = uniquePrefix();
    outbox = createOutbox(redis, { prefix });
    queue = createDrainQueue({ connection: redis, prefix, maxMessageAttempts: 3 });
  });

  afterEach(async () => {
    await queue.close();
    await dumpRedisPrefix(redis, prefix);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('redacts before Redis, records in order once per id, queues one drain and counts', async () => {
    const accepted = tally('outcome');
    const redactions = tally('type');
    const accept = createMessageIntake({
      outbox,
      queue,
      metrics: { messagesAccepted: accepted, redactions },
      defaultCountry: 'US',
      now: () => Date.parse('2026-03-01T10:00:00Z'),
    });
    const first = await accept('acme', 't1', {
      user_id: 'u1',
      messages: [
        { client_message_id: 'm1', role: 'user', content: 'mail jane@example.com' },
        {
          client_message_id: 'm2',
          role: 'assistant',
          content: 'call +1 415 555 0100',
          name: 'bot',
          created_at: '2026-01-02T03:04:05+01:00',
          metadata: { card: '4111 1111 1111 1111', nested: { mail: 'bob@example.org' } },
        },
      ],
    });
    expect(first.results.map((r) => r.status)).to.deep.equal(['queued', 'queued']);
    const again = await accept('acme', 't1', {
      user_id: 'u1',
      messages: [
        { client_message_id: 'm3', role: 'user', content: 'third' },
        { client_message_id: 'm1', role: 'user', content: 'mail jane@example.com' },
      ],
    });
    expect(again.results).to.deep.equal([
      { client_message_id: 'm3', status: 'queued' },
      { client_message_id: 'm1', status: 'duplicate' },
    ]);

    expect(await outbox.pendingIds('acme', 't1')).to.deep.equal(['m1', 'm2', 'm3']);
    const bodies = await outbox.recent('acme', 't1', 10);
    expect(bodies.map((b) => JSON.parse(b) as unknown)).to.deep.include({
      role: 'assistant',
      content: 'call [PHONE]',
      name: 'bot',
      created_at: '2026-01-02T03:04:05+01:00',
      metadata: { card: '[CARD]', nested: { mail: '[EMAIL]' } },
    });
    expect(JSON.parse(bodies[0] ?? '{}')).to.include({
      content: 'mail [EMAIL]',
      created_at: '2026-03-01T10:00:00.000Z',
    });
    const stored = JSON.stringify(await redis.hgetall(outbox.keys.message('acme', 'm2')));
    expect(stored).to.not.match(/555|4111|example/);

    // One waiting drain for the thread, however many requests came.
    const jobs = await queue.getJobs(['waiting', 'prioritized', 'delayed']);
    expect(jobs.map((j) => j.data)).to.deep.equal([{ tenant: 'acme', threadId: 't1' }]);
    expect(Object.fromEntries(accepted.seen)).to.deep.equal({ queued: 3, duplicate: 1 });
    // Redaction runs before the outbox knows a message is a duplicate, so the resent m1 counts too.
    expect(Object.fromEntries(redactions.seen)).to.deep.equal({ email: 3, phone: 1, card: 1 });
  });

  it('works without counters, and refuses a thread of another user with a 409, recording nothing', async () => {
    const accept = createMessageIntake({ outbox, queue, defaultCountry: 'US' });
    await accept('acme', 't1', {
      user_id: 'u1',
      messages: [{ client_message_id: 'a1', role: 'user', content: 'hello' }],
    });
    let thrown: unknown;
    try {
      await accept('acme', 't1', {
        user_id: 'u2',
        messages: [{ client_message_id: 'b1', role: 'user', content: 'hi' }],
      });
    } catch (err: unknown) {
      thrown = err;
    }
    expect(thrown).to.be.instanceOf(HttpError);
    expect(thrown).to.include({ status: 409, code: 'thread_owner_mismatch' });
    expect(await outbox.pendingIds('acme', 't1')).to.deep.equal(['a1']);
    expect(await outbox.status('acme', 'b1')).to.equal(undefined);
    // The same thread id of another tenant is another thread.
    const other = await accept('globex', 't1', {
      user_id: 'u2',
      messages: [{ client_message_id: 'b1', role: 'user', content: 'hi' }],
    });
    expect(other.results).to.deep.equal([{ client_message_id: 'b1', status: 'queued' }]);
  });
});
