import type { Pool } from 'pg';
import type { Config } from '@memfleet/config/load-config';
import type { BackendGateSettings } from './backend-gate.ts';
import type { MemoryBackend } from './memory-backend.ts';
import { createPostgresBackend } from './postgres-backend.ts';
import { createZepBackend } from './zep-backend.ts';

/** The backend `MEMORY_BACKEND` names, built from the parsed config. */
export function createMemoryBackend(
  config: Config,
  deps: { pool: Pool; timeoutMs: number },
): MemoryBackend {
  switch (config.memoryBackend) {
    case 'postgres':
      return createPostgresBackend(deps.pool);
    case 'zep': {
      // loadConfig guarantees the zep section whenever MEMORY_BACKEND=zep.
      const zep = config.zep;
      if (zep === undefined) throw new Error('MEMORY_BACKEND=zep without its configuration');
      return createZepBackend({
        apiKey: zep.apiKey,
        apiUrl: zep.apiUrl,
        batchSize: zep.batchSize,
        messageMaxChars: zep.messageMaxChars,
        timeoutMs: deps.timeoutMs,
      });
    }
  }
}

/** The write gate's settings (breaker, credential hold, 429 pause) from the parsed config. */
export function gateSettings(config: Config): BackendGateSettings {
  const w = config.worker;
  return {
    failureThreshold: w.breakerFailures,
    windowMs: w.breakerWindowMs,
    cooldownMs: w.breakerCooldownMs,
    authRetryMs: w.authRetryMs,
    rateLimitDefaultMs: w.rateLimitDefaultMs,
    probeTtlMs: w.backendTimeoutMs + 1000,
  };
}
