import { Counter, Gauge, type Registry } from 'prom-client';

/** Metrics of the live flags (`@memfleet/flags/flags`), set by the process's `Flags`. */
export interface FlagMetrics {
  /**
   * 1 for the global mode in force, 0 for the others. A read downgrade is applied: a global
   * `read_write` under a downgrade shows as `write_only` (what the fleet does), and
   * `memfleet_read_downgraded` says why. Per-tenant overrides are not shown (one series per mode).
   */
  memoryMode: Gauge<'mode'>;
  /** 1 while reads are downgraded to write_only fleet-wide, else 0. */
  readDowngraded: Gauge;
  /** Downgrades started by this process, by reason (`auth`). */
  readDowngrades: Counter<'reason'>;
}

/** Registers the flag metrics on `registry`. */
export function createFlagMetrics(registry: Registry): FlagMetrics {
  return {
    memoryMode: new Gauge({
      name: 'memfleet_memory_mode',
      help: 'Global memory mode in force (read downgrade applied): 1 for the mode, 0 for the others.',
      labelNames: ['mode'],
      registers: [registry],
    }),
    readDowngraded: new Gauge({
      name: 'memfleet_read_downgraded',
      help: '1 while backend reads are downgraded to write_only fleet-wide (e.g. after sustained 401s).',
      registers: [registry],
    }),
    readDowngrades: new Counter({
      name: 'memfleet_read_downgrades_total',
      help: 'Read downgrades started by this process, by reason.',
      labelNames: ['reason'],
      registers: [registry],
    }),
  };
}
