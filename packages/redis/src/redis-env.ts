import { z } from 'zod';
import { parseRedisTarget, type RedisTarget } from './redis-target.ts';

/** `REDIS_KEY_PREFIX`: a hash tag, so every memfleet key lands in one Redis Cluster slot. */
export const keyPrefixSchema = z
  .string()
  .regex(/^\{[A-Za-z0-9_-]{1,32}\}$/, 'must be a Redis Cluster hash tag such as {memfleet}')
  .default('{memfleet}');

/** Thrown by {@link readRedisEnv}; one line per bad variable, each naming it. */
export class RedisEnvError extends Error {
  constructor(readonly issues: string[]) {
    super(issues.join('\n'));
    this.name = 'RedisEnvError';
  }
}

/**
 * The Redis location and key prefix from the environment (`REDIS_URL`, `REDIS_CLUSTER_NODES`,
 * `REDIS_KEY_PREFIX`), for tools that need only Redis; the apps read them with the rest of their
 * configuration.
 */
export function readRedisEnv(env: NodeJS.ProcessEnv): { target: RedisTarget; prefix: string } {
  const issues: string[] = [];
  const set = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);
  const prefix = keyPrefixSchema.safeParse(set(env.REDIS_KEY_PREFIX));
  if (!prefix.success) {
    issues.push(`REDIS_KEY_PREFIX: ${prefix.error.issues[0]?.message ?? 'invalid'}`);
  }
  let target: RedisTarget | undefined;
  try {
    target = parseRedisTarget(set(env.REDIS_URL), set(env.REDIS_CLUSTER_NODES));
  } catch (err: unknown) {
    issues.push(err instanceof Error ? err.message : String(err));
  }
  if (target === undefined || !prefix.success) throw new RedisEnvError(issues);
  return { target, prefix: prefix.data };
}

/** The Redis variables as zod fields, for a tool's own environment schema. */
export const redisEnvFields = {
  REDIS_URL: z.string().optional(),
  REDIS_CLUSTER_NODES: z.string().optional(),
  REDIS_KEY_PREFIX: keyPrefixSchema,
};

/**
 * A `superRefine` check of {@link redisEnvFields}: reports a bad or missing Redis location on the
 * variable at fault, so the schema's issues name it.
 */
export function checkRedisLocation(
  e: { REDIS_URL?: string | undefined; REDIS_CLUSTER_NODES?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  try {
    parseRedisTarget(e.REDIS_URL, e.REDIS_CLUSTER_NODES);
  } catch (err: unknown) {
    const text = err instanceof Error ? err.message : String(err);
    const colon = text.indexOf(': ');
    ctx.addIssue({
      code: 'custom',
      path: [colon > 0 ? text.slice(0, colon) : 'REDIS_URL'],
      message: colon > 0 ? text.slice(colon + 2) : text,
    });
  }
}
