/**
 * Every Redis key of the outbox. All start with the same hash tag (`{memfleet}` by default) so the
 * multi-key scripts stay in one Redis Cluster slot. Ids are URI-encoded, so a `:` inside an id can
 * never make two keys collide.
 */
export interface OutboxKeys {
  /** Hash: the thread's owner (`user`), sequence counter (`seq`) and `inflight` marker. */
  thread(tenant: string, threadId: string): string;
  /** List: client message ids waiting to be written, in accept order. */
  outbox(tenant: string, threadId: string): string;
  /** String: token of the drain that holds the thread. */
  lock(tenant: string, threadId: string): string;
  /** Hash: one message's status and, until written, its redacted body. */
  message(tenant: string, clientMessageId: string): string;
  /** Sorted set: dead-lettered client message ids of a tenant, by time. */
  dead(tenant: string): string;
  /** Sorted set: threads with pending messages, scored by last progress. */
  pending(): string;
  /** List: the thread's most recent accepted message bodies, newest first (the read fallback). */
  recent(tenant: string, threadId: string): string;
  /** Set: the threads a user of a tenant has posted to (for erasure). */
  userThreads(tenant: string, userId: string): string;
  /** String: the reader's cached context of a thread in one memory mode. */
  context(tenant: string, threadId: string, mode: string): string;
}

const enc = encodeURIComponent;

/** The key layout under a prefix such as `{memfleet}`. */
export function outboxKeys(prefix: string): OutboxKeys {
  return {
    thread: (tenant, threadId) => `${prefix}:thr:${tenant}:${enc(threadId)}`,
    outbox: (tenant, threadId) => `${prefix}:ob:${tenant}:${enc(threadId)}`,
    lock: (tenant, threadId) => `${prefix}:lock:${tenant}:${enc(threadId)}`,
    message: (tenant, clientMessageId) => `${prefix}:msg:${tenant}:${enc(clientMessageId)}`,
    dead: (tenant) => `${prefix}:dlq:${tenant}`,
    pending: () => `${prefix}:pending`,
    recent: (tenant, threadId) => `${prefix}:recent:${tenant}:${enc(threadId)}`,
    userThreads: (tenant, userId) => `${prefix}:uthr:${tenant}:${enc(userId)}`,
    context: (tenant, threadId, mode) => `${prefix}:ctx:${tenant}:${enc(threadId)}:${mode}`,
  };
}

/** Member of the pending set naming a thread. */
export function pendingMember(tenant: string, threadId: string): string {
  return JSON.stringify([tenant, threadId]);
}

/** The thread a pending-set member names, or undefined for a malformed member. */
export function parsePendingMember(
  member: string,
): { tenant: string; threadId: string } | undefined {
  try {
    const value: unknown = JSON.parse(member);
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      typeof value[1] === 'string'
    ) {
      return { tenant: value[0], threadId: value[1] };
    }
  } catch {
    // A malformed member is reported as undefined below.
  }
  return undefined;
}
