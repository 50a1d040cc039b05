import type Mocha from 'mocha';
import { stopFixtures } from './fixtures.ts';
import { LeakGuard, type LeakBaseline } from './leak-guard.ts';

// Node creates the stdout/stderr handles on first use; a test that is the first to log would
// otherwise look like it leaked a pipe.
const _stdio = [process.stdout, process.stderr];

const guard = new LeakGuard();
const CHECK_TIMEOUT_MS = 2000;
// An escape hatch while hunting a leak elsewhere, e.g. MEMFLEET_TEST_LEAK_GUARD=off.
const enabled = process.env.MEMFLEET_TEST_LEAK_GUARD !== 'off';
let baseline: LeakBaseline | undefined;

/**
 * Root hooks for integration tests (loaded by `.mocharc.int.json`): every test must close the
 * sockets, servers and child processes it opens, or it fails with a message naming them.
 */
export const mochaHooks: Mocha.RootHookObject = {
  beforeEach() {
    baseline = enabled ? guard.snapshot() : undefined;
  },
  async afterEach(this: Mocha.Context) {
    const before = baseline;
    baseline = undefined;
    // A failed test has its own error to show; a leak it caused would only add noise.
    if (!before || this.currentTest?.state !== 'passed') return;
    // The check may wait its full time; that must not trip a short hook timeout instead.
    if (this.timeout() > 0) this.timeout(Math.max(this.timeout(), CHECK_TIMEOUT_MS + 5000));
    const leak = await guard.check(before, { timeoutMs: CHECK_TIMEOUT_MS });
    // Hook#error fails the current test without aborting the rest of its suite, which a throw
    // from an afterEach hook would do.
    if (leak) (this.test as Mocha.Hook | undefined)?.error(new Error(leak));
  },
};

/** Stops the shared servers of `@memfleet/testing/fixtures` once the whole run is over. */
export async function mochaGlobalTeardown(): Promise<void> {
  await stopFixtures();
}
