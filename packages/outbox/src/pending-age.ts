import type { ScriptClient } from './redis-script.ts';
import { outboxKeys, parsePendingMember } from './outbox-keys.ts';

/**
 * When the oldest message still waiting in any thread's outbox was accepted (ms since the epoch),
 * or undefined when nothing waits. Looks at the head of the `limit` threads that made progress
 * least recently (two pipelined round trips), which bounds the cost of a metrics scrape.
 */
export async function oldestPendingAcceptedAt(
  redis: ScriptClient,
  prefix: string,
  limit = 1000,
): Promise<number | undefined> {
  const keys = outboxKeys(prefix);
  const threads = (await redis.zrange(keys.pending(), 0, limit - 1)).flatMap((m) => {
    const t = parsePendingMember(m);
    return t === undefined ? [] : [t];
  });
  if (threads.length === 0) return undefined;
  const heads = redis.pipeline();
  for (const t of threads) heads.lindex(keys.outbox(t.tenant, t.threadId), 0);
  const headIds = ((await heads.exec()) ?? []).map(([, id], i) => ({
    tenant: threads[i]?.tenant ?? '',
    id: typeof id === 'string' ? id : undefined,
  }));
  const accepted = redis.pipeline();
  const asked = headIds.filter((h): h is { tenant: string; id: string } => h.id !== undefined);
  for (const h of asked) accepted.hget(keys.message(h.tenant, h.id), 'accepted_at');
  let oldest: number | undefined;
  for (const [, value] of (asked.length === 0 ? [] : await accepted.exec()) ?? []) {
    const at = Number(value);
    if (typeof value === 'string' && Number.isFinite(at) && (oldest === undefined || at < oldest)) {
      oldest = at;
    }
  }
  return oldest;
}
