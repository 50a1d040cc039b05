import { expect } from 'chai';
import type { RequeueInput } from './outbox.ts';
import { useTestOutbox } from './outbox.fixture.ts';

const body = (content: string) => JSON.stringify({ role: 'user', content });

describe('outbox requeue (real Redis)', () => {
  const ctx = useTestOutbox();

  /** Appends `ids` to a thread of u1, then ends each with the outcome `outcomes` gives it. */
  async function settle(
    threadId: string,
    ids: string[],
    outcomes: Record<string, 'written' | 'dead' | 'queued'>,
  ): Promise<void> {
    await ctx.outbox.append(
      'acme',
      threadId,
      'u1',
      ids.map((id) => ({ clientMessageId: id, body: body(id) })),
      1000,
    );
    expect(await ctx.outbox.acquireLock('acme', threadId, 'tok', 5000)).to.equal(true);
    for (const id of ids) {
      const outcome = outcomes[id] ?? 'written';
      if (outcome === 'queued') break;
      await ctx.outbox.beginWrite('acme', threadId, [id]);
      await ctx.outbox.commit(
        'acme',
        threadId,
        'tok',
        [id],
        outcome === 'written' ? { status: 'written' } : { status: 'dead', reason: `no ${id}` },
        2000,
      );
    }
    await ctx.outbox.releaseLock('acme', threadId, 'tok');
  }

  const input = (id: string, seq: number, content = `again ${id}`): RequeueInput => ({
    clientMessageId: id,
    body: body(content),
    seq,
    acceptedAtMs: 500,
  });

  it('puts written and dead messages back at the end of the thread in the given order, skipping pending ones', async () => {
    await settle('t1', ['m1', 'm2', 'm3', 'm4'], { m2: 'dead', m4: 'queued' });
    expect(await ctx.outbox.pendingIds('acme', 't1')).to.deep.equal(['m4']);
    expect(await ctx.outbox.deadLetters('acme', 0, 10)).to.have.length(1);

    const res = await ctx.outbox.requeue(
      'acme',
      't1',
      'u1',
      [input('m1', 1), input('m2', 2), input('m3', 3), input('m4', 4)],
      3000,
    );
    expect(res).to.deep.equal({
      ok: true,
      results: ['requeued', 'requeued', 'requeued', 'pending'],
    });
    expect(await ctx.outbox.pendingIds('acme', 't1')).to.deep.equal(['m4', 'm1', 'm2', 'm3']);
    // The dead letter is no longer one; records are queued again, attempts reset, kept for good.
    expect(await ctx.outbox.deadLetters('acme', 0, 10)).to.deep.equal([]);
    const m2 = await ctx.outbox.status('acme', 'm2');
    expect(m2).to.include({ status: 'queued', attempts: 0, seq: 2, threadId: 't1', userId: 'u1' });
    expect(m2?.error).to.equal(undefined);
    expect(m2?.acceptedAt.getTime()).to.equal(1000);
    expect(await ctx.redis.ttl(ctx.outbox.keys.message('acme', 'm1'))).to.equal(-1);
    // The drain reads the new bodies; the pending message kept its own.
    const head = await ctx.outbox.readHead('acme', 't1', 10);
    expect(head.messages.map((m) => m.body)).to.deep.equal([
      body('m4'),
      body('again m1'),
      body('again m2'),
      body('again m3'),
    ]);
    expect(head.messages.map((m) => m.seq)).to.deep.equal([4, 1, 2, 3]);
    expect(await ctx.outbox.stalledThreads(Date.now(), 10)).to.deep.equal([
      { tenant: 'acme', threadId: 't1' },
    ]);
  });

  it('recreates expired records with the given sequence and accept time, and later appends follow them', async () => {
    const res = await ctx.outbox.requeue(
      'acme',
      't9',
      'u9',
      [input('x1', 7), input('x2', 8)],
      3000,
    );
    expect(res).to.deep.equal({ ok: true, results: ['requeued', 'requeued'] });
    expect(await ctx.outbox.threadOwner('acme', 't9')).to.equal('u9');
    expect(await ctx.outbox.userThreads('acme', 'u9')).to.deep.equal(['t9']);
    const x1 = await ctx.outbox.status('acme', 'x1');
    expect(x1).to.include({ status: 'queued', seq: 7, threadId: 't9' });
    expect(x1?.acceptedAt.getTime()).to.equal(500);
    await ctx.outbox.append(
      'acme',
      't9',
      'u9',
      [{ clientMessageId: 'x3', body: body('x3') }],
      4000,
    );
    expect((await ctx.outbox.status('acme', 'x3'))?.seq).to.equal(9);
    expect(await ctx.outbox.pendingIds('acme', 't9')).to.deep.equal(['x1', 'x2', 'x3']);
  });

  it("respects the thread's owner and leaves another thread's message alone", async () => {
    await settle('t1', ['m1'], {});
    await settle('t2', ['n1'], {});
    const other = await ctx.outbox.requeue('acme', 't1', 'intruder', [input('m1', 1)], 3000);
    expect(other).to.deep.equal({ ok: false, reason: 'thread_owner_mismatch', ownerUserId: 'u1' });
    expect((await ctx.outbox.status('acme', 'm1'))?.status).to.equal('written');
    expect(await ctx.outbox.pendingIds('acme', 't1')).to.deep.equal([]);

    const wrong = await ctx.outbox.requeue(
      'acme',
      't1',
      'u1',
      [input('n1', 1), input('m1', 1)],
      3000,
    );
    expect(wrong).to.deep.equal({ ok: true, results: ['other_thread', 'requeued'] });
    expect(await ctx.outbox.pendingIds('acme', 't1')).to.deep.equal(['m1']);
    expect(await ctx.outbox.pendingIds('acme', 't2')).to.deep.equal([]);
    expect((await ctx.outbox.status('acme', 'n1'))?.status).to.equal('written');
    expect(await ctx.outbox.requeue('acme', 't1', 'u1', [], 3000)).to.deep.equal({
      ok: true,
      results: [],
    });
  });
});
