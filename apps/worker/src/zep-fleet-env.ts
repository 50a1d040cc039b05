import type { ZepEmulator } from '@memfleet/testing/zep-emulator';

/** Test support: the Zep emulator's key for fleets on Zep. */
export const ZEP_KEY = 'zep-fleet-key';

/** Worker timings short enough that retries, stalls and sweeps play out in seconds. */
export const FAST_WORKER_ENV: Readonly<Record<string, string>> = {
  WORKER_CONCURRENCY: '8',
  WORKER_LOCK_DURATION_MS: '3000',
  WORKER_STALLED_INTERVAL_MS: '1000',
  WORKER_BACKEND_TIMEOUT_MS: '1000',
  WORKER_BACKOFF_BASE_MS: '100',
  WORKER_BACKOFF_MAX_MS: '1000',
  WORKER_SWEEP_INTERVAL_MS: '1000',
};

/** A fleet writing to Zep, with fast timings so faults play out in seconds. */
export const zepEnv = (
  emu: ZepEmulator,
  extra: Record<string, string> = {},
): Record<string, string> => ({
  MEMORY_BACKEND: 'zep',
  ZEP_API_URL: emu.url,
  ZEP_API_KEY: ZEP_KEY,
  ...FAST_WORKER_ENV,
  WORKER_BREAKER_COOLDOWN_MS: '1000',
  WORKER_AUTH_RETRY_MS: '1000',
  ...extra,
});
