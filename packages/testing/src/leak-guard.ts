/** Active-resource counts by type, as named by `process.getActiveResourcesInfo()`. */
export type ResourceCounts = Record<string, number>;

/** What {@link LeakGuard.snapshot} records before a test. */
export interface LeakBaseline {
  counts: ResourceCounts;
  allowance: ResourceCounts;
}

/** Options of {@link LeakGuard.check}. */
export interface LeakCheckOptions {
  /** How long resources may take to close after the test. Default 2000 ms. */
  timeoutMs?: number;
  /** Delay between samples. Default 25 ms. */
  pollMs?: number;
}

/**
 * Sockets, servers, pipes and child processes: what a test that forgot to close something leaves
 * behind, and what keeps a test runner from exiting. Timers (`Timeout`, `Immediate`) are left
 * out on purpose: mocha, ioredis and pg arm and clear them all the time, so counting them would
 * fail innocent tests, and a leaked client shows up as its socket anyway. `FSReqCallback` and DNS
 * requests are transient. Unref'd handles are never listed by Node, so they cannot count either.
 */
const DEFAULT_WATCHED = [
  'TCPSocketWrap',
  'TCPServerWrap',
  'TCPWrap',
  'TCPConnectWrap',
  'TLSWrap',
  'PipeWrap',
  'PipeServerWrap',
  'PipeConnectWrap',
  'ProcessWrap',
  'UDPWrap',
] as const;

const ALLOWANCE_KEY = Symbol.for('@memfleet/testing/leak-allowance');
const holder = globalThis as typeof globalThis & { [ALLOWANCE_KEY]?: ResourceCounts };
const allowance: ResourceCounts = (holder[ALLOWANCE_KEY] ??= {});

function countOf(counts: ResourceCounts, type: string): number {
  return counts[type] ?? 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Detects tests that leave sockets, servers or child processes open: take a
 * {@link LeakGuard.snapshot} before the test and {@link LeakGuard.check} it afterwards.
 * `@memfleet/testing/mocha-hooks` does both around every integration test.
 */
export class LeakGuard {
  /**
   * Declares resources that are meant to outlive the test that creates them (e.g. a shared
   * server started lazily by a fixture): checks taken across this call expect that many more.
   * Returns a function that takes the allowance back once those resources are closed.
   */
  static allow(counts: ResourceCounts): () => void {
    for (const [type, n] of Object.entries(counts)) allowance[type] = countOf(allowance, type) + n;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const [type, n] of Object.entries(counts))
        allowance[type] = countOf(allowance, type) - n;
    };
  }

  /**
   * @param sample - lists active resources; default `process.getActiveResourcesInfo`.
   * @param watched - the resource types that count as leaks; default sockets, servers, pipes and
   *   child processes.
   */
  constructor(
    private readonly sample: () => string[] = () => process.getActiveResourcesInfo(),
    private readonly watched: readonly string[] = DEFAULT_WATCHED,
  ) {}

  /** Counts the watched resources open now. */
  counts(): ResourceCounts {
    const counts: ResourceCounts = {};
    for (const type of this.sample()) {
      if (this.watched.includes(type)) counts[type] = countOf(counts, type) + 1;
    }
    return counts;
  }

  /** Records the baseline to compare against after the test. */
  snapshot(): LeakBaseline {
    return { counts: this.counts(), allowance: { ...allowance } };
  }

  /** The resources open now beyond `baseline` (plus any allowance granted since); empty if none. */
  excess(baseline: LeakBaseline): ResourceCounts {
    const now = this.counts();
    const excess: ResourceCounts = {};
    for (const type of this.watched) {
      const allowed =
        countOf(baseline.counts, type) +
        countOf(allowance, type) -
        countOf(baseline.allowance, type);
      const extra = countOf(now, type) - allowed;
      if (extra > 0) excess[type] = extra;
    }
    return excess;
  }

  /**
   * Waits until the watched resources are back to `baseline`, since closing a socket or reaping a
   * child takes a few event-loop turns. Resolves `undefined` when they are, else a message naming
   * each leaked type and how many are left over.
   */
  async check(baseline: LeakBaseline, options: LeakCheckOptions = {}): Promise<string | undefined> {
    const timeoutMs = options.timeoutMs ?? 2000;
    const pollMs = options.pollMs ?? 25;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const excess = this.excess(baseline);
      const leaked = Object.entries(excess);
      if (leaked.length === 0) return undefined;
      if (Date.now() >= deadline) {
        const list = leaked.map(([type, n]) => `${type} x${n}`).join(', ');
        return (
          `resource leak: ${list} still open ${timeoutMs} ms after the test. Close every ` +
          'connection, server and child process the test opens (shared ones belong in ' +
          'before/after hooks).'
        );
      }
      await sleep(pollMs);
    }
  }
}
