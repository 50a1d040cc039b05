import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/** A client that can run scripts: one Redis or a Cluster (all keys of a call share a slot). */
export type ScriptClient = Redis | Cluster;

/** A Lua script run by SHA, loaded on first use (and again after a Redis restart). */
export interface RedisScript {
  run(
    client: ScriptClient,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown>;
}

/** Wraps Lua source for EVALSHA with a fallback to EVAL when the script cache is empty. */
export function redisScript(source: string): RedisScript {
  const sha = createHash('sha1').update(source).digest('hex');
  return {
    async run(client, keys, args) {
      try {
        return await client.evalsha(sha, keys.length, ...keys, ...args);
      } catch (err: unknown) {
        if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
          return client.eval(source, keys.length, ...keys, ...args);
        }
        throw err;
      }
    },
  };
}
