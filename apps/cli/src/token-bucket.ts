const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Options of {@link TokenBucket}. */
export interface TokenBucketOptions {
  /** Tokens added per second. */
  perSecond: number;
  /** Most tokens the bucket holds (the burst); it starts full. */
  capacity: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * A token bucket: `take(n)` resolves once `n` tokens are available and spends them. A take larger
 * than the capacity waits for a full bucket and leaves it in debt, so the long-run rate holds
 * for any batch size: `n` tokens never take less than `(n - capacity) / perSecond` seconds.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: TokenBucketOptions) {
    if (!(options.perSecond > 0) || !(options.capacity >= 1)) {
      throw new RangeError('a token bucket needs perSecond > 0 and capacity >= 1');
    }
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? realSleep;
    this.tokens = options.capacity;
    this.last = this.now();
  }

  async take(n: number): Promise<void> {
    const need = Math.min(n, this.options.capacity);
    for (;;) {
      const t = this.now();
      this.tokens = Math.min(
        this.options.capacity,
        this.tokens + ((t - this.last) / 1000) * this.options.perSecond,
      );
      this.last = t;
      if (this.tokens >= need) {
        this.tokens -= n;
        return;
      }
      await this.sleep(
        Math.max(1, Math.ceil(((need - this.tokens) / this.options.perSecond) * 1000)),
      );
    }
  }
}
