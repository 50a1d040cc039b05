import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { toError } from '@memfleet/errors/to-error';
import { describeRedisTarget, type RedisTarget } from './redis-target.ts';

/** A connection to one Redis server or to a Redis Cluster; BullMQ and memfleet take either. */
export type RedisClient = Redis | Cluster;

/**
 * A client for a long-running process, with the given ioredis options (for a cluster they apply
 * to every node's connection; `lazyConnect`, `enableOfflineQueue` and `enableAutoPipelining` to the
 * cluster client too). `maxRetriesPerRequest: null` suits BullMQ workers, which wait for Redis
 * instead of failing jobs; an API passes a small number so that requests fail fast.
 */
export function createRedisClient(target: RedisTarget, options: RedisOptions = {}): RedisClient {
  if (target.kind === 'single') return new Redis(target.url, options);
  return new Cluster(target.nodes, {
    ...(options.lazyConnect === undefined ? {} : { lazyConnect: options.lazyConnect }),
    ...(options.enableOfflineQueue === undefined
      ? {}
      : { enableOfflineQueue: options.enableOfflineQueue }),
    ...(options.enableAutoPipelining === undefined
      ? {}
      : { enableAutoPipelining: options.enableAutoPipelining }),
    redisOptions: {
      ...options,
      ...(target.username === undefined ? {} : { username: target.username }),
      ...(target.password === undefined ? {} : { password: target.password }),
      ...(target.tls ? { tls: {} } : {}),
    },
  });
}

/**
 * A connected client for a command-line tool: no reconnecting and no queueing while Redis is
 * away, so a command fails at once with the reason instead of hanging.
 */
export async function connectCliRedis(target: RedisTarget): Promise<RedisClient> {
  const failFast: RedisOptions = {
    maxRetriesPerRequest: 1,
    lazyConnect: true,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    connectTimeout: 5000,
  };
  const client: RedisClient =
    target.kind === 'single'
      ? new Redis(target.url, failFast)
      : new Cluster(target.nodes, {
          lazyConnect: true,
          enableOfflineQueue: false,
          clusterRetryStrategy: () => null,
          redisOptions: {
            ...failFast,
            ...(target.username === undefined ? {} : { username: target.username }),
            ...(target.password === undefined ? {} : { password: target.password }),
            ...(target.tls ? { tls: {} } : {}),
          },
        });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return client;
  } catch (err: unknown) {
    client.disconnect();
    throw new Error(`cannot reach Redis (${describeRedisTarget(target)}): ${toError(err).message}`);
  }
}
