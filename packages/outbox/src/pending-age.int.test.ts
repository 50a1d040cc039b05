import { expect } from 'chai';
import { Redis } from 'ioredis';
import { testRedisUrl, uniquePrefix } from '@memfleet/testing/fixtures';
import { createOutbox, type Outbox } from './outbox.ts';
import { oldestPendingAcceptedAt } from './pending-age.ts';

const input = (id: string) => ({
  clientMessageId: id,
  body: JSON.stringify({ role: 'user', content: id }),
});

describe('oldest pending message (real Redis)', () => {
  let redis: Redis;
  let outbox: Outbox;
  let prefix: string;

  beforeEach(async () => {
    redis = new Redis(await testRedisUrl());
    prefix = uniquePrefix();
    outbox = createOutbox(redis, { prefix, dedupeWindowS: 60 });
  });
  afterEach(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it("is the accept time of the oldest head of any thread's outbox, and moves as heads are written", async () => {
    expect(await oldestPendingAcceptedAt(redis, prefix)).to.equal(undefined);
    await outbox.append('acme', 't1', 'u1', [input('a1'), input('a2')], 5000);
    await outbox.append('acme', 't1', 'u1', [input('a3')], 9000);
    await outbox.append('globex', 't:2', 'u2', [input('b1')], 7000);
    expect(await oldestPendingAcceptedAt(redis, prefix)).to.equal(5000);

    expect(await outbox.acquireLock('acme', 't1', 'tok', 5000)).to.equal(true);
    await outbox.commit('acme', 't1', 'tok', ['a1', 'a2'], { status: 'written' }, 10_000);
    // t1's head is now a3 (9000): globex's b1 (7000) is the oldest.
    expect(await oldestPendingAcceptedAt(redis, prefix)).to.equal(7000);
    await outbox.commit('acme', 't1', 'tok', ['a3'], { status: 'written' }, 11_000);
    await outbox.releaseLock('acme', 't1', 'tok');
    expect(await oldestPendingAcceptedAt(redis, prefix)).to.equal(7000);
  });
});
