import type { Cluster, Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import type { Config } from '@memfleet/config/load-config';
import type { Logger } from '@memfleet/logger/create-logger';
import { createFlagMetrics } from '@memfleet/metrics/flag-metrics';
import { createFlags, type Flags } from './flags.ts';

/** The process's live flags from the parsed config, with their metrics on `registry`, started. */
export async function startFlags(
  redis: Redis | Cluster,
  config: Config,
  deps: { registry: Registry; logger: Pick<Logger, 'info' | 'warn'> },
): Promise<Flags> {
  const flags = createFlags(redis, {
    prefix: config.redisKeyPrefix,
    defaults: { mode: config.memoryMode, canaryPercent: config.readCanaryPercent },
    ...config.flags,
    metrics: createFlagMetrics(deps.registry),
    logger: deps.logger,
  });
  await flags.start();
  return flags;
}
