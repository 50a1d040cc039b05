import { expect } from 'chai';
import { retryDelayMs, type RetryPolicy } from './retry-policy.ts';

const policy: RetryPolicy = { maxAttempts: 10, baseMs: 1000, maxMs: 60_000, jitter: 0.5 };

describe('retryDelayMs', () => {
  it('doubles per attempt without jitter', () => {
    const p = { ...policy, jitter: 0 };
    expect([1, 2, 3, 4].map((a) => retryDelayMs(a, p))).to.deep.equal([1000, 2000, 4000, 8000]);
  });

  it('caps at maxMs, also for huge attempt numbers', () => {
    expect(retryDelayMs(7, { ...policy, jitter: 0 })).to.equal(60_000);
    expect(retryDelayMs(10_000, { ...policy, jitter: 0 })).to.equal(60_000);
  });

  it('draws the jittered share from the random source', () => {
    expect(retryDelayMs(3, policy, () => 0)).to.equal(2000);
    expect(retryDelayMs(3, policy, () => 1)).to.equal(4000);
    expect(retryDelayMs(3, policy, () => 0.5)).to.equal(3000);
  });

  it('stays within [exp*(1-jitter), exp] for random draws', () => {
    for (let i = 0; i < 1000; i++) {
      const d = retryDelayMs(2, policy);
      expect(d).to.be.within(1000, 2000);
    }
  });

  it('treats attempt 0 or fractions as the first attempt', () => {
    expect(retryDelayMs(0, { ...policy, jitter: 0 })).to.equal(1000);
    expect(retryDelayMs(1.7, { ...policy, jitter: 0 })).to.equal(1000);
  });
});
