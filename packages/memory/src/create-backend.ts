import type { Pool } from 'pg';
import type { Config } from '@memfleet/config/load-config';
import type { BackendGateSettings } from './backend-gate.ts';
import type { MemoryBackend } from './memory-backend.ts';
import { createMem0Backend } from './mem0-backend.ts';
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
    case 'mem0': {
      const mem0 = config.mem0;
      if (mem0 === undefined) throw new Error('MEMORY_BACKEND=mem0 without its configuration');
      return createMem0Backend({
        apiKey: mem0.apiKey,
        apiUrl: mem0.apiUrl,
        style: mem0.style,
        batchSize: mem0.batchSize,
        eventTimeoutMs: mem0.eventTimeoutMs,
        infer: mem0.infer,
        onEmpty: mem0.onEmpty,
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
    // A mem0 write waits for its event as well.
    probeTtlMs: w.backendTimeoutMs + (config.mem0?.eventTimeoutMs ?? 0) + 1000,
  };
}
