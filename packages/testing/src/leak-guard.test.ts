import { expect } from 'chai';
import { LeakGuard } from './leak-guard.ts';

function fakeGuard(): { guard: LeakGuard; resources: string[] } {
  const resources: string[] = [];
  return { guard: new LeakGuard(() => [...resources]), resources };
}

describe('LeakGuard', () => {
  it('counts only the watched resource types', () => {
    const { guard, resources } = fakeGuard();
    resources.push('TCPSocketWrap', 'TCPSocketWrap', 'Timeout', 'FSReqCallback', 'ProcessWrap');
    expect(guard.counts()).to.deep.equal({ TCPSocketWrap: 2, ProcessWrap: 1 });
  });

  it('reports what is open beyond the baseline, by type', () => {
    const { guard, resources } = fakeGuard();
    resources.push('TCPSocketWrap');
    const baseline = guard.snapshot();
    resources.push('TCPSocketWrap', 'PipeWrap', 'PipeWrap', 'Timeout');
    expect(guard.excess(baseline)).to.deep.equal({ TCPSocketWrap: 1, PipeWrap: 2 });
  });

  it('does not count resources that were closed or that existed before', () => {
    const { guard, resources } = fakeGuard();
    resources.push('TCPSocketWrap', 'ProcessWrap');
    const baseline = guard.snapshot();
    resources.splice(0, 1);
    expect(guard.excess(baseline)).to.deep.equal({});
  });

  it('waits for resources to close before reporting', async () => {
    const { guard, resources } = fakeGuard();
    const baseline = guard.snapshot();
    resources.push('TCPSocketWrap');
    setTimeout(() => resources.pop(), 50);
    expect(await guard.check(baseline, { timeoutMs: 1000, pollMs: 5 })).to.equal(undefined);
  });

  it('names each leaked type and count after the timeout', async () => {
    const { guard, resources } = fakeGuard();
    const baseline = guard.snapshot();
    resources.push('TCPServerWrap', 'ProcessWrap', 'ProcessWrap');
    const report = await guard.check(baseline, { timeoutMs: 30, pollMs: 5 });
    expect(report).to.match(/TCPServerWrap x1, ProcessWrap x2 still open 30 ms after the test/);
  });

  it('adds allowances granted after the snapshot to the baseline until released', () => {
    const { guard, resources } = fakeGuard();
    const baseline = guard.snapshot();
    const release = LeakGuard.allow({ ProcessWrap: 1 });
    resources.push('ProcessWrap');
    try {
      expect(guard.excess(baseline)).to.deep.equal({});
    } finally {
      release();
      release();
    }
    expect(guard.excess(baseline)).to.deep.equal({ ProcessWrap: 1 });
  });
});
