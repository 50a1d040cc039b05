import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { withTimeout } from './with-timeout.ts';

/** Resolves when `signal` aborts, with its reason. */
const aborted = (signal: AbortSignal): Promise<unknown> =>
  new Promise((resolve) => {
    signal.addEventListener('abort', () => {
      resolve(signal.reason);
    });
  });

describe('withTimeout', () => {
  it('aborts the signal with a TimeoutError once the time has passed', async () => {
    const reason = await withTimeout(20, undefined, (signal) => aborted(signal));
    expect(reason).to.be.instanceOf(DOMException);
    expect((reason as DOMException).name).to.equal('TimeoutError');
  });

  it("aborts with the parent's reason when the parent aborts first", async () => {
    const parent = new AbortController();
    const started = withTimeout(10_000, parent.signal, (signal) => aborted(signal));
    parent.abort(new Error('budget spent'));
    expect(((await started) as Error).message).to.equal('budget spent');
  });

  it('starts aborted when the parent already is', async () => {
    const parent = new AbortController();
    parent.abort(new Error('gone'));
    const seen = await withTimeout(10_000, parent.signal, (signal) =>
      Promise.resolve({ aborted: signal.aborted, reason: signal.reason as Error }),
    );
    expect(seen.aborted).to.equal(true);
    expect(seen.reason.message).to.equal('gone');
  });

  it('lets go of the timer and the parent once the call settles', async () => {
    const parent = new AbortController();
    let inner: AbortSignal | undefined;
    const value = await withTimeout(20, parent.signal, (signal) => {
      inner = signal;
      return Promise.resolve(42);
    });
    expect(value).to.equal(42);
    await sleep(60);
    parent.abort();
    expect(inner?.aborted).to.equal(false);
  });

  it('passes a rejection through and still lets go', async () => {
    const parent = new AbortController();
    let inner: AbortSignal | undefined;
    const err = await withTimeout(20, parent.signal, (signal) => {
      inner = signal;
      return Promise.reject(new Error('refused'));
    }).catch((e: unknown) => e as Error);
    expect(err.message).to.equal('refused');
    await sleep(60);
    parent.abort();
    expect(inner?.aborted).to.equal(false);
  });
});
