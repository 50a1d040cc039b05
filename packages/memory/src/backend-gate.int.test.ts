import { expect } from 'chai';
import { Redis } from 'ioredis';
import { testRedisUrl, uniquePrefix } from '@memfleet/testing/fixtures';
import { waitForValue } from '@memfleet/testing/wait-for';
import { createBackendGate, type BackendGate, type BackendGateSettings } from './backend-gate.ts';

const settings: BackendGateSettings = {
  failureThreshold: 3,
  windowMs: 60_000,
  cooldownMs: 300,
  authRetryMs: 300,
  rateLimitDefaultMs: 400,
  probeTtlMs: 2000,
};

describe('backend gate (real Redis)', () => {
  let redis: Redis;
  let prefix: string;
  const gates: BackendGate[] = [];

  /** A gate as one worker of the fleet sees it; all share the prefix. */
  const worker = (overrides: Partial<BackendGateSettings> = {}): BackendGate => {
    const gate = createBackendGate(redis, {
      prefix,
      backend: 'zep',
      settings: { ...settings, ...overrides },
    });
    gates.push(gate);
    return gate;
  };

  beforeEach(async () => {
    redis = new Redis(await testRedisUrl());
    prefix = uniquePrefix();
  });
  afterEach(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('lets calls go while closed, counts failures below the threshold, and resets on success', async () => {
    const a = worker();
    expect(await a.acquire()).to.deep.equal({ verdict: 'go', dirty: false });
    expect(await a.failure('transient', false)).to.deep.equal({ counted: true });
    expect(await a.failure('transient', false)).to.deep.equal({ counted: true });
    expect(await a.acquire()).to.deep.equal({ verdict: 'go', dirty: true });
    expect(await a.success(false)).to.equal(false);
    expect(await a.acquire()).to.deep.equal({ verdict: 'go', dirty: false });
    // The count restarted: two more failures still do not open it.
    await a.failure('transient', false);
    expect(await a.failure('transient', false)).to.deep.equal({ counted: true });
    expect((await a.state()).breaker).to.equal(0);
  });

  it('opens fleet-wide on sustained failures; failures while open use no attempt', async () => {
    const [a, b] = [worker(), worker()];
    await a.failure('transient', false);
    await b.failure('transient', false);
    const third = await a.failure('transient', false);
    expect(third).to.include({ counted: false, reason: 'breaker_open', opened: true });
    const seenByB = await b.acquire();
    expect(seenByB.verdict).to.equal('wait');
    expect(seenByB).to.include({ reason: 'breaker_open' });
    expect(await b.failure('transient', false)).to.include({ counted: false, opened: false });
    expect((await b.state()).breaker).to.equal(2);
  });

  it('is not closed by a late success of a call let through before it opened', async () => {
    const [a, b] = [worker(), worker()];
    for (let i = 0; i < 3; i++) await a.failure('transient', false);
    expect((await a.state()).breaker).to.equal(2);
    expect(await b.success(false)).to.equal(false);
    expect((await b.state()).breaker).to.equal(2);
    expect((await b.acquire()).verdict).to.equal('wait');
  });

  it('after the cooldown lets exactly one probe through; a failed probe reopens, a good one closes', async () => {
    const gs = [worker(), worker(), worker()];
    for (const g of gs) await g.failure('transient', false);
    expect((await gs[0]?.state())?.breaker).to.equal(2);

    const first = await waitForValue(
      'a probe',
      () => Promise.all(gs.map((g) => g.acquire())),
      (vs) => vs.some((v) => v.verdict === 'probe'),
    );
    expect(first.filter((v) => v.verdict === 'probe')).to.have.length(1);
    expect(first.filter((v) => v.verdict === 'wait')).to.have.length(2);
    expect((await gs[0]?.state())?.breaker).to.equal(1);

    // The probe fails: open again for a full cooldown, still no attempt used.
    expect(await gs[1]?.failure('transient', true)).to.include({ counted: false });
    const reopened = await gs[2]?.acquire();
    expect(reopened?.verdict).to.equal('wait');
    expect((await gs[0]?.state())?.breaker).to.equal(2);

    const probe = await waitForValue(
      'the next probe',
      () => (gs[2] as BackendGate).acquire(),
      (v) => v.verdict === 'probe',
    );
    expect(probe).to.deep.equal({ verdict: 'probe', reason: 'breaker_open' });
    expect(await gs[2]?.success(true)).to.equal(true);
    for (const g of gs) expect(await g.acquire()).to.deep.equal({ verdict: 'go', dirty: false });
  });

  it('pauses every worker for the Retry-After of a 429, never shortens a pause, and leaves the breaker alone', async () => {
    const [a, b] = [worker(), worker()];
    const t0 = Date.now();
    const v = await a.failure('rate_limited', false, 1500);
    expect(v).to.include({ counted: false, reason: 'rate_limited', opened: false });
    // A later, shorter Retry-After does not cut the fleet's pause.
    await b.failure('rate_limited', false, 100);
    const held = await b.acquire();
    expect(held.verdict).to.equal('wait');
    if (held.verdict === 'wait') {
      expect(held.reason).to.equal('rate_limited');
      expect(held.waitMs).to.be.above(1000);
    }
    const state = await a.state();
    expect(state.breaker).to.equal(0);
    expect(state.rateLimitedForMs).to.be.above(1000);
    await waitForValue(
      'the pause to end',
      () => b.acquire(),
      (p) => p.verdict === 'go',
    );
    expect(Date.now() - t0).to.be.at.least(1400);
  });

  it('uses the default pause for a 429 without Retry-After', async () => {
    const a = worker();
    const v = await a.failure('rate_limited', false);
    expect(v.counted).to.equal(false);
    if (!v.counted) expect(v.waitMs).to.be.within(300, 400);
  });

  it('holds every write after rejected credentials until a probe gets through', async () => {
    const [a, b] = [worker(), worker()];
    expect(await a.failure('auth', false)).to.include({
      counted: false,
      reason: 'auth',
      opened: true,
    });
    const held = await b.acquire();
    expect(held).to.include({ verdict: 'wait', reason: 'auth' });
    expect(await a.state()).to.include({ breaker: 2, reason: 'auth' });
    // Still rejected at the probe: held again.
    const probe1 = await waitForValue(
      'a probe',
      () => b.acquire(),
      (p) => p.verdict === 'probe',
    );
    expect(probe1).to.deep.equal({ verdict: 'probe', reason: 'auth' });
    expect(await b.failure('auth', true)).to.include({ counted: false, reason: 'auth' });
    expect((await a.acquire()).verdict).to.equal('wait');
    // The key works again.
    await waitForValue(
      'a probe',
      () => a.acquire(),
      (p) => p.verdict === 'probe',
    );
    expect(await a.success(true)).to.equal(true);
    expect(await b.acquire()).to.deep.equal({ verdict: 'go', dirty: false });
    expect((await b.state()).reason).to.equal(undefined);
  });

  it('forgets failures older than the window', async () => {
    const a = worker({ windowMs: 200 });
    await a.failure('transient', false);
    await a.failure('transient', false);
    const t = Date.now();
    await waitForValue(
      'the window to pass',
      () => Promise.resolve(Date.now()),
      (now) => now - t > 250,
    );
    expect(await a.failure('transient', false)).to.deep.equal({ counted: true });
    expect((await a.state()).breaker).to.equal(0);
  });
});
