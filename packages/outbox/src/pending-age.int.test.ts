import { expect } from 'chai';
import { useTestOutbox } from './outbox.fixture.ts';
import { oldestPendingAcceptedAt } from './pending-age.ts';

const input = (id: string) => ({
  clientMessageId: id,
  body: JSON.stringify({ role: 'user', content: id }),
});

describe('oldest pending message (real Redis)', () => {
  const ctx = useTestOutbox();

  it("is the accept time of the oldest head of any thread's ctx.outbox, and moves as heads are written", async () => {
    expect(await oldestPendingAcceptedAt(ctx.redis, ctx.prefix)).to.equal(undefined);
    await ctx.outbox.append('acme', 't1', 'u1', [input('a1'), input('a2')], 5000);
    await ctx.outbox.append('acme', 't1', 'u1', [input('a3')], 9000);
    await ctx.outbox.append('globex', 't:2', 'u2', [input('b1')], 7000);
    expect(await oldestPendingAcceptedAt(ctx.redis, ctx.prefix)).to.equal(5000);

    expect(await ctx.outbox.acquireLock('acme', 't1', 'tok', 5000)).to.equal(true);
    await ctx.outbox.commit('acme', 't1', 'tok', ['a1', 'a2'], { status: 'written' }, 10_000);
    // t1's head is now a3 (9000): globex's b1 (7000) is the oldest.
    expect(await oldestPendingAcceptedAt(ctx.redis, ctx.prefix)).to.equal(7000);
    await ctx.outbox.commit('acme', 't1', 'tok', ['a3'], { status: 'written' }, 11_000);
    await ctx.outbox.releaseLock('acme', 't1', 'tok');
    expect(await oldestPendingAcceptedAt(ctx.redis, ctx.prefix)).to.equal(7000);
  });
});
