import { expect } from 'chai';
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '@memfleet/testing/redis-server';
import { createOutbox, LockLostError } from './outbox.ts';
import { useTestOutbox } from './outbox.fixture.ts';

const body = (content: string) => JSON.stringify({ role: 'user', content });

describe('outbox (real Redis)', () => {
  const ctx = useTestOutbox();

  it('keeps the last accepted messages of a thread for the read fallback, and its owner', async () => {
    const small = createOutbox(ctx.redis, {
      prefix: ctx.prefix,
      dedupeWindowS: 60,
      recentMessages: 3,
    });
    const send = (ids: string[]) =>
      small.append(
        'acme',
        't1',
        'u1',
        ids.map((id) => ({ clientMessageId: id, body: body(id) })),
        1000,
      );
    await send(['m1', 'm2']);
    await send(['m2', 'm3', 'm4']);
    expect(await small.recent('acme', 't1', 10)).to.deep.equal([
      body('m2'),
      body('m3'),
      body('m4'),
    ]);
    expect(await small.recent('acme', 't1', 2)).to.deep.equal([body('m3'), body('m4')]);
    // More new messages in one call than the list keeps: the newest, in order.
    await send(['m5', 'm6', 'm7', 'm8', 'm9']);
    expect(await small.recent('acme', 't1', 10)).to.deep.equal([
      body('m7'),
      body('m8'),
      body('m9'),
    ]);
    await send(['m10']);
    expect(await small.recent('acme', 't1', 10)).to.deep.equal([
      body('m8'),
      body('m9'),
      body('m10'),
    ]);
    expect(await small.recent('globex', 't1', 10)).to.deep.equal([]);
    expect(await ctx.redis.ttl(small.keys.recent('acme', 't1'))).to.be.within(1, 60);
    expect(await small.threadOwner('acme', 't1')).to.equal('u1');
    expect(await small.threadOwner('globex', 't1')).to.equal(undefined);
    const none = createOutbox(ctx.redis, { prefix: `${ctx.prefix}n`, recentMessages: 0 });
    await none.append('acme', 't1', 'u1', [{ clientMessageId: 'x', body: body('x') }], 1000);
    expect(await none.recent('acme', 't1', 10)).to.deep.equal([]);
  });

  it('erases the given messages of a thread under its lock; a message accepted meanwhile stays', async () => {
    await ctx.outbox.append(
      'acme',
      't1',
      'u1',
      ['m1', 'm2', 'm3'].map((id) => ({ clientMessageId: id, body: body(id) })),
      1000,
    );
    expect(await ctx.outbox.userThreads('acme', 'u1')).to.deep.equal(['t1']);
    expect(await ctx.outbox.acquireLock('acme', 't1', 'tok', 5000)).to.equal(true);
    await ctx.outbox.commit('acme', 't1', 'tok', ['m1'], { status: 'dead', reason: 'x' }, 2000);
    await ctx.redis.set(ctx.outbox.keys.context('acme', 't1', 'read_write'), 'cached');
    const ids = ['m1', ...(await ctx.outbox.pendingIds('acme', 't1'))];
    // Accepted after the erasure read the thread: not part of it.
    await ctx.outbox.append(
      'acme',
      't1',
      'u1',
      [{ clientMessageId: 'm4', body: body('m4') }],
      3000,
    );
    await expectRejection(ctx.outbox.eraseThread('acme', 't1', 'u1', 'other-token', ids));
    expect(await ctx.outbox.eraseThread('acme', 't1', 'u1', 'tok', ids)).to.equal(1);
    expect(await ctx.outbox.pendingIds('acme', 't1')).to.deep.equal(['m4']);
    for (const id of ids) expect(await ctx.outbox.status('acme', id), id).to.equal(undefined);
    expect(await ctx.redis.zrange(ctx.outbox.keys.dead('acme'), 0, -1)).to.deep.equal([]);
    expect(await ctx.redis.exists(ctx.outbox.keys.context('acme', 't1', 'read_write'))).to.equal(0);
    expect(await ctx.outbox.userThreads('acme', 'u1')).to.deep.equal(['t1']);
    // With nothing left, the thread itself goes.
    expect(await ctx.outbox.eraseThread('acme', 't1', 'u1', 'tok', ['m4'])).to.equal(0);
    expect(await ctx.outbox.threadOwner('acme', 't1')).to.equal(undefined);
    expect(await ctx.outbox.userThreads('acme', 'u1')).to.deep.equal([]);
    expect(await ctx.redis.zcard(ctx.outbox.keys.pending())).to.equal(0);
  });

  it('lists dead letters and replays them at the end of their thread, in the order given', async () => {
    await ctx.outbox.append(
      'acme',
      't1',
      'u1',
      ['d1', 'd2', 'ok'].map((id) => ({ clientMessageId: id, body: body(id) })),
      1000,
    );
    expect(await ctx.outbox.acquireLock('acme', 't1', 'tok', 5000)).to.equal(true);
    await ctx.outbox.commit('acme', 't1', 'tok', ['d1'], { status: 'dead', reason: 'x' }, 2000);
    await ctx.outbox.commit('acme', 't1', 'tok', ['d2'], { status: 'dead', reason: 'y' }, 3000);
    await ctx.outbox.commit('acme', 't1', 'tok', ['ok'], { status: 'written' }, 4000);
    expect(await ctx.outbox.deadLetters('acme', 0, 10)).to.deep.equal([
      { clientMessageId: 'd1', deadAt: new Date(2000) },
      { clientMessageId: 'd2', deadAt: new Date(3000) },
    ]);
    expect(await ctx.outbox.deadLetters('acme', 1, 10)).to.have.length(1);
    await ctx.outbox.append(
      'acme',
      't1',
      'u1',
      [{ clientMessageId: 'later', body: body('later') }],
      5000,
    );

    expect(
      await ctx.outbox.replayDead('acme', 't1', ['d1', 'd2', 'ok', 'nope'], 6000),
    ).to.deep.equal(['replayed', 'replayed', 'not_dead', 'not_dead']);
    expect(await ctx.outbox.pendingIds('acme', 't1')).to.deep.equal(['later', 'd1', 'd2']);
    expect(await ctx.outbox.deadLetters('acme', 0, 10)).to.deep.equal([]);
    const d1 = await ctx.outbox.status('acme', 'd1');
    expect(d1).to.include({ status: 'queued', attempts: 0 });
    expect(d1?.error).to.equal(undefined);
    expect(await ctx.redis.ttl(ctx.outbox.keys.message('acme', 'd1'))).to.equal(-1);
    const head = await ctx.outbox.readHead('acme', 't1', 10);
    expect(head.messages.map((m) => m.body)).to.deep.equal([body('later'), body('d1'), body('d2')]);
    // A dead message whose record expired cannot come back; it says so.
    await ctx.outbox.commit('acme', 't1', 'tok', ['later'], { status: 'dead', reason: 'z' }, 7000);
    await ctx.redis.hdel(ctx.outbox.keys.message('acme', 'later'), 'body');
    expect(await ctx.outbox.replayDead('acme', 't1', ['later'], 8000)).to.deep.equal(['body_gone']);
    // Purging forgets dead messages only.
    expect(await ctx.outbox.purgeDead('acme', ['later', 'd1'])).to.equal(1);
    expect(await ctx.outbox.status('acme', 'later')).to.equal(undefined);
    expect(await ctx.outbox.status('acme', 'd1')).to.include({ status: 'queued' });
    expect(await ctx.outbox.deadLetters('acme', 0, 10)).to.deep.equal([]);
  });

  it('records messages in accept order and reports resends as duplicates', async () => {
    const first = await ctx.outbox.append(
      'acme',
      't1',
      'u1',
      [
        { clientMessageId: 'm1', body: body('a') },
        { clientMessageId: 'm2', body: body('b') },
        { clientMessageId: 'm1', body: body('again') },
      ],
      1000,
    );
    expect(first).to.deep.equal({
      ok: true,
      drainNeeded: true,
      results: ['queued', 'queued', 'duplicate'],
    });
    const again = await ctx.outbox.append(
      'acme',
      't1',
      'u1',
      [
        { clientMessageId: 'm2', body: body('b') },
        { clientMessageId: 'm3', body: body('c') },
      ],
      2000,
    );
    expect(again).to.deep.equal({
      ok: true,
      drainNeeded: false,
      results: ['duplicate', 'queued'],
    });

    const head = await ctx.outbox.readHead('acme', 't1', 10);
    expect(head.userId).to.equal('u1');
    expect(head.uncertain).to.equal(false);
    expect(head.messages.map((m) => [m.clientMessageId, m.seq])).to.deep.equal([
      ['m1', 1],
      ['m2', 2],
      ['m3', 3],
    ]);
    expect(head.messages[0]?.body).to.equal(body('a'));
    expect(head.messages[2]?.acceptedAt.getTime()).to.equal(2000);
  });

  it('asks for one drain per free thread until a drain takes the lock or the window passes', async () => {
    const send = (id: string, at: number) =>
      ctx.outbox.append('acme', 't1', 'u1', [{ clientMessageId: id, body: body(id) }], at);
    const drainNeeded = async (id: string, at: number) => {
      const res = await send(id, at);
      if (!res.ok) throw new Error('append refused');
      return res.drainNeeded;
    };
    expect(await drainNeeded('m1', 1000)).to.equal(true);
    expect(await drainNeeded('m2', 1001)).to.equal(false);
    // A resend adds nothing, so it asks for nothing.
    const resend = await send('m1', 1002);
    expect(resend).to.deep.equal({ ok: true, drainNeeded: false, results: ['duplicate'] });
    // A drain taking the thread sees m1 and m2, and while it holds the thread, what comes after is
    // its to write too: it lets go only with the outbox empty.
    expect(await ctx.outbox.acquireLock('acme', 't1', 'tok', 10_000)).to.equal(true);
    expect(await drainNeeded('m3', 1003)).to.equal(false);
    expect(await drainNeeded('m4', 1004)).to.equal(false);
    await ctx.outbox.releaseLock('acme', 't1', 'tok');
    // Let go with messages left (a drain that yielded asks for another itself; here nobody does).
    expect(await drainNeeded('m5', 1005)).to.equal(true);
    expect(await drainNeeded('m6', 1006)).to.equal(false);
    // A request nobody took (its job was lost) is trusted for 5 s only.
    expect(await drainNeeded('m7', 1005 + 4999)).to.equal(false);
    expect(await drainNeeded('m8', 1005 + 5000)).to.equal(true);
    // Another thread has its own mark.
    const other = await ctx.outbox.append(
      'acme',
      't2',
      'u1',
      [{ clientMessageId: 'o1', body: body('o') }],
      1005,
    );
    expect(other).to.deep.include({ drainNeeded: true });
  });

  it('keeps tenants apart: the same id from two tenants is two messages', async () => {
    const a = await ctx.outbox.append(
      'acme',
      't1',
      'u1',
      [{ clientMessageId: 'm1', body: body('a') }],
      1,
    );
    const b = await ctx.outbox.append(
      'globex',
      't1',
      'u9',
      [{ clientMessageId: 'm1', body: body('b') }],
      1,
    );
    expect(a).to.deep.equal({ ok: true, drainNeeded: true, results: ['queued'] });
    expect(b).to.deep.equal({ ok: true, drainNeeded: true, results: ['queued'] });
    expect((await ctx.outbox.status('acme', 'm1'))?.userId).to.equal('u1');
    expect((await ctx.outbox.status('globex', 'm1'))?.userId).to.equal('u9');
  });

  it('refuses a message for a thread owned by another user, storing nothing', async () => {
    await ctx.outbox.append('acme', 't1', 'u1', [{ clientMessageId: 'm1', body: body('a') }], 1);
    const res = await ctx.outbox.append(
      'acme',
      't1',
      'u2',
      [{ clientMessageId: 'm2', body: body('b') }],
      2,
    );
    expect(res).to.deep.equal({ ok: false, reason: 'thread_owner_mismatch', ownerUserId: 'u1' });
    expect(await ctx.outbox.status('acme', 'm2')).to.equal(undefined);
    expect(await ctx.outbox.length('acme', 't1')).to.equal(1);
  });

  it('claims a thread and its head in one call; a commit may release it once empty', async () => {
    await ctx.outbox.append(
      'acme',
      't1',
      'u1',
      [
        { clientMessageId: 'm1', body: body('a') },
        { clientMessageId: 'm2', body: body('b') },
        { clientMessageId: 'm:3', body: body('c') },
      ],
      1,
    );
    const head = await ctx.outbox.claim('acme', 't1', 'tok', 5000, 2);
    expect(head?.userId).to.equal('u1');
    expect(head?.uncertain).to.equal(false);
    expect(head?.messages.map((m) => [m.clientMessageId, m.seq, m.body])).to.deep.equal([
      ['m1', 1, body('a')],
      ['m2', 2, body('b')],
    ]);
    expect(await ctx.outbox.claim('acme', 't1', 'other', 5000, 2)).to.equal(undefined);
    expect(await ctx.outbox.lockTtlMs('acme', 't1')).to.be.above(0);
    // The claim cleared the drain request, and the claimant writes what comes while it holds the
    // thread: the next message asks for no drain.
    const next = await ctx.outbox.append(
      'acme',
      't1',
      'u1',
      [{ clientMessageId: 'm4', body: body('d') }],
      2,
    );
    expect(next).to.deep.include({ drainNeeded: false });

    await ctx.outbox.beginWrite('acme', 't1', ['m1', 'm2']);
    const left = await ctx.outbox.commit(
      'acme',
      't1',
      'tok',
      ['m1', 'm2'],
      { status: 'written' },
      3,
      true,
    );
    expect(left).to.equal(2);
    expect(await ctx.outbox.lockTtlMs('acme', 't1')).to.be.above(0);
    const rest = await ctx.outbox.readHead('acme', 't1', 10);
    expect(rest.messages.map((m) => m.clientMessageId)).to.deep.equal(['m:3', 'm4']);
    expect(rest.messages[0]?.body).to.equal(body('c'));
    expect(
      await ctx.outbox.commit('acme', 't1', 'tok', ['m:3', 'm4'], { status: 'written' }, 4, true),
    ).to.equal(0);
    expect(await ctx.outbox.lockTtlMs('acme', 't1')).to.equal(0);
    // Releasing with the outbox empty also clears the drain request mark.
    expect(
      await ctx.outbox.append('acme', 't1', 'u1', [{ clientMessageId: 'm5', body: body('e') }], 5),
    ).to.deep.include({ drainNeeded: true });
    expect(await ctx.outbox.claim('acme', 't1', 'tok2', 5000, 2)).to.not.equal(undefined);
    for (const [id, at] of [
      ['m6', 6],
      ['m7', 7],
    ] as const) {
      expect(
        await ctx.outbox.append('acme', 't1', 'u1', [{ clientMessageId: id, body: body(id) }], at),
      ).to.deep.include({ drainNeeded: false });
    }
    expect(await ctx.outbox.releaseIfEmpty('acme', 't1', 'tok2')).to.equal(false);
    expect(await ctx.outbox.lockTtlMs('acme', 't1')).to.be.above(0);
    await ctx.outbox.commit('acme', 't1', 'tok2', ['m5', 'm6', 'm7'], { status: 'written' }, 8);
    expect(await ctx.outbox.releaseIfEmpty('acme', 't1', 'tok2')).to.equal(true);
    expect(await ctx.outbox.lockTtlMs('acme', 't1')).to.equal(0);
    const lost = await ctx.outbox.releaseIfEmpty('acme', 't1', 'tok2').catch((e: unknown) => e);
    expect(lost).to.be.instanceOf(LockLostError);
    expect(
      await ctx.outbox.append('acme', 't1', 'u1', [{ clientMessageId: 'm8', body: body('h') }], 9),
    ).to.deep.include({ drainNeeded: true });
    await ctx.redis.lpop(ctx.outbox.keys.outbox('acme', 't1'));
    const empty = await ctx.outbox.claim('acme', 't1', 'again', 5000, 2);
    expect(empty?.messages).to.deep.equal([]);
    expect(await ctx.outbox.claim('acme', 'unknown', 'tok', 5000, 2)).to.deep.equal({
      userId: undefined,
      uncertain: false,
      messages: [],
    });
  });

  it('commits the head under the lock: written drops the body, dead keeps it with a reason', async () => {
    await ctx.outbox.append(
      'acme',
      't1',
      'u1',
      [
        { clientMessageId: 'm1', body: body('a') },
        { clientMessageId: 'm2', body: body('b') },
        { clientMessageId: 'm3', body: body('c') },
      ],
      1,
    );
    expect(await ctx.outbox.acquireLock('acme', 't1', 'tok', 5000)).to.equal(true);
    expect(await ctx.outbox.acquireLock('acme', 't1', 'other', 5000)).to.equal(false);
    await ctx.outbox.beginWrite('acme', 't1', ['m1', 'm2']);
    expect((await ctx.outbox.readHead('acme', 't1', 1)).uncertain).to.equal(true);

    const left = await ctx.outbox.commit(
      'acme',
      't1',
      'tok',
      ['m1', 'm2'],
      { status: 'written' },
      50,
    );
    expect(left).to.equal(1);
    const m1 = await ctx.outbox.status('acme', 'm1');
    expect(m1).to.include({ status: 'written', attempts: 1 });
    expect(m1?.writtenAt?.getTime()).to.equal(50);
    expect(await ctx.redis.hget(ctx.outbox.keys.message('acme', 'm1'), 'body')).to.equal(null);
    expect(await ctx.redis.ttl(ctx.outbox.keys.message('acme', 'm1'))).to.be.within(1, 60);
    expect((await ctx.outbox.readHead('acme', 't1', 5)).uncertain).to.equal(false);

    await ctx.outbox.commit(
      'acme',
      't1',
      'tok',
      ['m3'],
      { status: 'dead', reason: 'HTTP 400: bad' },
      60,
    );
    expect(await ctx.outbox.status('acme', 'm3')).to.include({
      status: 'dead',
      error: 'HTTP 400: bad',
    });
    expect(await ctx.redis.hget(ctx.outbox.keys.message('acme', 'm3'), 'body')).to.equal(body('c'));
    expect(await ctx.redis.zrange(ctx.outbox.keys.dead('acme'), 0, -1)).to.deep.equal(['m3']);
    expect(await ctx.outbox.length('acme', 't1')).to.equal(0);
    expect(await ctx.outbox.stalledThreads(Number.MAX_SAFE_INTEGER, 10)).to.deep.equal([]);
  });

  it('refuses to commit for a drain that lost its lock, and when the head is not what it wrote', async () => {
    await ctx.outbox.append(
      'acme',
      't1',
      'u1',
      [
        { clientMessageId: 'm1', body: body('a') },
        { clientMessageId: 'm2', body: body('b') },
      ],
      1,
    );
    await ctx.outbox.acquireLock('acme', 't1', 'old', 5000);
    await ctx.redis.del(ctx.outbox.keys.lock('acme', 't1'));
    await ctx.outbox.acquireLock('acme', 't1', 'new', 5000);
    let caught: unknown;
    try {
      await ctx.outbox.commit('acme', 't1', 'old', ['m1'], { status: 'written' }, 1);
    } catch (err: unknown) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(LockLostError);
    let mismatch: unknown;
    try {
      await ctx.outbox.commit('acme', 't1', 'new', ['m2'], { status: 'written' }, 1);
    } catch (err: unknown) {
      mismatch = err;
    }
    expect(String(mismatch)).to.match(/head changed/);
    expect(await ctx.outbox.length('acme', 't1')).to.equal(2);
    expect(await ctx.outbox.extendLock('acme', 't1', 'old', 5000)).to.equal(false);
    expect(await ctx.outbox.extendLock('acme', 't1', 'new', 5000)).to.equal(true);
    await ctx.outbox.releaseLock('acme', 't1', 'old');
    expect(await ctx.outbox.lockTtlMs('acme', 't1')).to.be.above(0);
    await ctx.outbox.releaseLock('acme', 't1', 'new');
    expect(await ctx.outbox.lockTtlMs('acme', 't1')).to.equal(0);
  });

  it('lists threads without progress for the sweep', async () => {
    await ctx.outbox.append(
      'acme',
      'slow',
      'u1',
      [{ clientMessageId: 'a', body: body('a') }],
      1000,
    );
    await ctx.outbox.append(
      'acme',
      'fresh',
      'u1',
      [{ clientMessageId: 'b', body: body('b') }],
      5000,
    );
    expect(await ctx.outbox.stalledThreads(2000, 10)).to.deep.equal([
      { tenant: 'acme', threadId: 'slow' },
    ]);
    await ctx.outbox.touchPending('acme', 'slow', 6000);
    expect(await ctx.outbox.stalledThreads(2000, 10)).to.deep.equal([]);
  });

  it('keeps ids with separators from colliding', async () => {
    await ctx.outbox.append('acme', 'a:b', 'u1', [{ clientMessageId: 'x:y', body: body('1') }], 1);
    await ctx.outbox.append('acme', 'a', 'u1', [{ clientMessageId: 'x', body: body('2') }], 1);
    expect(await ctx.outbox.length('acme', 'a:b')).to.equal(1);
    expect(await ctx.outbox.length('acme', 'a')).to.equal(1);
    expect((await ctx.outbox.status('acme', 'x:y'))?.threadId).to.equal('a:b');
  });

  it('reads the head of ids any client may send, with their bodies, in the claim script', async () => {
    const ids = [
      "plain-id_1.2~!*()'",
      'with space & ampersand',
      'slash/colon:percent%20hash#',
      'Grüße-東京-🙂',
      '"quoted"+plus=eq?q[]',
      String.fromCharCode(1, 9, 127),
    ];
    await ctx.outbox.append(
      'acme',
      't/1',
      'u1',
      ids.map((id, i) => ({ clientMessageId: id, body: body(`b${String(i)}`) })),
      1000,
    );
    await ctx.outbox.beginWrite('acme', 't/1', ids.slice(0, 2));
    const head = await ctx.outbox.claim('acme', 't/1', 'tok', 5000, 10);
    expect(head?.messages.map((m) => m.clientMessageId)).to.deep.equal(ids);
    expect(head?.messages.map((m) => m.body)).to.deep.equal(
      ids.map((_, i) => body(`b${String(i)}`)),
    );
    expect(head?.messages.map((m) => m.attempts)).to.deep.equal([1, 1, 0, 0, 0, 0]);
    expect(head?.messages.map((m) => m.seq)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect(head?.messages[0]?.acceptedAt.getTime()).to.equal(1000);
    const again = await ctx.outbox.readHead('acme', 't/1', 3);
    expect(again.messages).to.deep.equal(head?.messages.slice(0, 3));
  });
});

describe('outbox records in Redis, as the fleet runs it', () => {
  // Its own Redis, since one test changes its settings.
  let server: RedisServer;
  let redis: Redis;
  before(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
  });
  after(async () => {
    await redis.quit();
    await server.stop();
  });

  /** A message of a ~2 KB reply accepted, drained and written; its record's encoding and size. */
  async function writtenRecord(id: string): Promise<{ encoding: string; bytes: number }> {
    const outbox = createOutbox(redis, { prefix: '{mf-records}', dedupeWindowS: 60 });
    const reply = body(`${id}: ${'Sure, here is the plan for your stay. '.repeat(50)}`);
    expect(reply.length).to.be.within(1900, 2100);
    await outbox.append('acme', `t-${id}`, 'u1', [{ clientMessageId: id, body: reply }], 1000);
    const head = await outbox.claim('acme', `t-${id}`, 'tok', 5000, 10);
    expect(head?.messages.map((m) => m.body)).to.deep.equal([reply]);
    await outbox.beginWrite('acme', `t-${id}`, [id]);
    await outbox.commit('acme', `t-${id}`, 'tok', [id], { status: 'written' }, 2000, true);
    expect((await outbox.status('acme', id))?.status).to.equal('written');
    const key = outbox.keys.message('acme', id);
    return {
      encoding: String(await redis.object('ENCODING', key)),
      bytes: Number(await redis.memory('USAGE', key)),
    };
  }

  it("keeps a written message's record compact once its body has gone", async () => {
    const fleet = await writtenRecord('m1');
    expect(fleet.encoding).to.equal('listpack');
    expect(fleet.bytes).to.be.below(300);
    // Redis's default: the body made the hash a hash table, which it stays after the body goes.
    await redis.config('SET', 'hash-max-listpack-value', '64');
    const defaults = await writtenRecord('m2');
    expect(defaults.encoding).to.equal('hashtable');
    expect(defaults.bytes).to.be.above(2 * fleet.bytes);
  });
});

async function expectRejection(promise: Promise<unknown>): Promise<void> {
  let rejected = false;
  await promise.catch(() => {
    rejected = true;
  });
  expect(rejected, 'rejected').to.equal(true);
}
