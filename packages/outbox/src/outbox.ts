import { outboxKeys, parsePendingMember, pendingMember, type OutboxKeys } from './outbox-keys.ts';
import { redisScript, type ScriptClient } from './redis-script.ts';

/** A message handed to the outbox: its id and its redacted body, serialized once by the caller. */
export interface OutboxInput {
  clientMessageId: string;
  body: string;
}

/** Result of {@link Outbox.append}. */
export type AppendResult =
  | {
      ok: true;
      results: ('queued' | 'duplicate')[];
      /**
       * The caller must request a drain of the thread: messages were added, no drain holds the
       * thread (the holder writes whatever is appended before it lets go), and no drain request
       * is waiting (one made within the window and not yet taken by a drain).
       */
      drainNeeded: boolean;
    }
  | { ok: false; reason: 'thread_owner_mismatch'; ownerUserId: string };

/**
 * A message to put back in its thread (see {@link Outbox.requeue}): its id, the redacted body to
 * write, and the accept sequence and time to use if Redis no longer has its record.
 */
export interface RequeueInput {
  clientMessageId: string;
  body: string;
  seq: number;
  acceptedAtMs: number;
}

/** Result of {@link Outbox.requeue}. */
export type RequeueResult =
  | { ok: true; results: ('requeued' | 'pending' | 'other_thread')[] }
  | { ok: false; reason: 'thread_owner_mismatch'; ownerUserId: string };

/** Status of one message as the outbox knows it. */
export interface MessageStatus {
  clientMessageId: string;
  threadId: string;
  userId: string;
  seq: number;
  status: 'queued' | 'written' | 'dead';
  attempts: number;
  acceptedAt: Date;
  writtenAt?: Date;
  error?: string;
}

/** A message at the head of a thread's outbox. `body` is the stored JSON text. */
export interface PendingMessage {
  clientMessageId: string;
  seq: number;
  attempts: number;
  acceptedAt: Date;
  /** Undefined when the message's record is missing (never expected; handled as corrupt). */
  body: string | undefined;
}

/** The head of a thread's outbox. */
export interface OutboxHead {
  userId: string | undefined;
  /** A write was started and not committed: the backend may hold some of these already. */
  uncertain: boolean;
  messages: PendingMessage[];
}

/** How a head batch ended. */
export type CommitOutcome = { status: 'written' } | { status: 'dead'; reason: string };

/** Thrown by commit when the drain no longer holds the thread (its lock expired and was taken). */
export class LockLostError extends Error {
  constructor(what: string) {
    super(`thread lock lost before ${what}`);
    this.name = 'LockLostError';
  }
}

/** Options of {@link createOutbox}. */
export interface OutboxOptions {
  /** Key prefix, a Redis Cluster hash tag. Default `{memfleet}`. */
  prefix?: string;
  /** How long a final status (and so the fast dedupe) stays in Redis, in seconds. Default 30 days. */
  dedupeWindowS?: number;
  /** Accepted messages kept per thread for the read fallback. Default 4; 0 keeps none. */
  recentMessages?: number;
  /**
   * How long an append trusts an earlier drain request of its thread that no drain has taken yet,
   * in ms, before asking for another. Default 5000.
   */
  drainRequestWindowMs?: number;
}

/** The per-thread outbox in Redis: accept order, dedupe, status, and the drain's head. */
export interface Outbox {
  readonly keys: OutboxKeys;
  /**
   * Atomically records new messages of a thread in accept order and reports each as queued or
   * duplicate (same client message id of this tenant seen before).
   */
  append(
    tenant: string,
    threadId: string,
    userId: string,
    messages: readonly OutboxInput[],
    nowMs: number,
  ): Promise<AppendResult>;
  /** The outbox's record of a message, or undefined when it is unknown (or expired). */
  status(tenant: string, clientMessageId: string): Promise<MessageStatus | undefined>;
  /** Takes the thread for one drain; false when another drain holds it. */
  acquireLock(tenant: string, threadId: string, token: string, ttlMs: number): Promise<boolean>;
  /**
   * Takes the thread for one drain and reads the head of its outbox (as {@link Outbox.readHead}),
   * in one round trip for the lock and the head's ids; undefined when another drain holds it.
   */
  claim(
    tenant: string,
    threadId: string,
    token: string,
    ttlMs: number,
    limit: number,
  ): Promise<OutboxHead | undefined>;
  /** Extends the lock if still held; false when it was lost. */
  extendLock(tenant: string, threadId: string, token: string, ttlMs: number): Promise<boolean>;
  /** Remaining ms of the thread's lock (0 when free). */
  lockTtlMs(tenant: string, threadId: string): Promise<number>;
  /** Releases the lock if still held. */
  releaseLock(tenant: string, threadId: string, token: string): Promise<void>;
  /**
   * Ends a drain: releases the lock, and clears the drain request mark, if the outbox is empty
   * (true). False while messages wait (the lock stays held); throws {@link LockLostError} when the
   * lock is no longer held.
   */
  releaseIfEmpty(tenant: string, threadId: string, token: string): Promise<boolean>;
  /** Up to `limit` messages from the head of the thread's outbox, in order. */
  readHead(tenant: string, threadId: string, limit: number): Promise<OutboxHead>;
  /** Marks a write of these head messages as started: counts an attempt, sets `uncertain`. */
  beginWrite(tenant: string, threadId: string, clientMessageIds: readonly string[]): Promise<void>;
  /**
   * Takes back the attempt `beginWrite` counted, when the backend (not the messages) stopped the
   * write: rate limited, breaker open, credentials rejected. `reason` shows in the messages'
   * status while they wait. `settled` clears the uncertain mark: no write of this attempt can
   * have landed and none was in doubt before.
   */
  holdWrite(
    tenant: string,
    threadId: string,
    clientMessageIds: readonly string[],
    reason: string,
    settled: boolean,
  ): Promise<void>;
  /**
   * Removes these messages from the head of the outbox with their final status, if the lock is
   * still held and they are still the head. Returns the number of messages left in the outbox.
   * With `releaseIfEmpty`, the same call ends the drain when nothing is left, as
   * {@link Outbox.releaseIfEmpty}. The thread's uncertain mark is cleared, unless `keepUncertain`
   * (the messages after these were part of a write whose fate is unknown).
   */
  commit(
    tenant: string,
    threadId: string,
    token: string,
    clientMessageIds: readonly string[],
    outcome: CommitOutcome,
    nowMs: number,
    releaseIfEmpty?: boolean,
    keepUncertain?: boolean,
  ): Promise<number>;
  /** Threads with pending messages and no progress since `beforeMs`. */
  stalledThreads(beforeMs: number, limit: number): Promise<{ tenant: string; threadId: string }[]>;
  /** Notes that a thread was looked at, so a sweep does not pick it again at once. */
  touchPending(tenant: string, threadId: string, nowMs: number): Promise<void>;
  /** Number of messages waiting in a thread's outbox. */
  length(tenant: string, threadId: string): Promise<number>;
  /** The user owning a thread of this tenant, or undefined when the tenant has no such thread. */
  threadOwner(tenant: string, threadId: string): Promise<string | undefined>;
  /** The thread's most recently accepted message bodies (redacted JSON), oldest first. */
  recent(tenant: string, threadId: string, limit: number): Promise<string[]>;
  /** Dead-lettered client message ids of a tenant, oldest first, with when they died. */
  deadLetters(
    tenant: string,
    offset: number,
    limit: number,
  ): Promise<{ clientMessageId: string; deadAt: Date }[]>;
  /**
   * Puts dead messages of one thread back at the end of its outbox, in the order given (sort them
   * by `seq`); each answers `replayed`, `not_dead` (left alone) or `body_gone` (its record expired).
   */
  replayDead(
    tenant: string,
    threadId: string,
    clientMessageIds: readonly string[],
    nowMs: number,
  ): Promise<('replayed' | 'not_dead' | 'body_gone')[]>;
  /**
   * Puts messages that reached a final state (written or dead), or whose record has expired, back
   * at the end of their thread's outbox in the order given, with these bodies, attempts reset, so
   * the drain writes them again (a backfill to a new backend). Each answers `requeued`, `pending`
   * (still waiting in the outbox: left alone) or `other_thread` (its record names another thread:
   * left alone). A message keeps its accept sequence and time when Redis still has them. The thread
   * belongs to `userId` if it has no owner yet; another owner refuses the whole call.
   */
  requeue(
    tenant: string,
    threadId: string,
    userId: string,
    messages: readonly RequeueInput[],
    nowMs: number,
  ): Promise<RequeueResult>;
  /** Forgets dead messages for good (record and dead-letter entry); returns how many. */
  purgeDead(tenant: string, clientMessageIds: readonly string[]): Promise<number>;
  /** The threads a user of this tenant has posted to. */
  userThreads(tenant: string, userId: string): Promise<string[]>;
  /** Client message ids waiting in a thread's outbox, in order. */
  pendingIds(tenant: string, threadId: string): Promise<string[]>;
  /**
   * Erases these messages of a thread (status, body, outbox entry, dead-letter entry), the
   * thread's recent messages and cached contexts, and, once nothing of it is left, the thread
   * itself. Needs the thread's lock. Returns the messages still left (accepted meanwhile).
   */
  eraseThread(
    tenant: string,
    threadId: string,
    userId: string,
    token: string,
    clientMessageIds: readonly string[],
  ): Promise<number>;
}

// KEYS: thread hash, outbox list, pending zset, recent list, user's thread set, lock, message
// hashes... ARGV: user, now, thread id, pending member, recent limit, ttl s, drain window ms, then
// per message: client message id, body. The first reply is 1 when the caller must request a drain:
// something was added, the thread's lock is free, and no drain was requested within the window
// (the thread hash's 'drain' field holds the last request's time; a drain clears it when it takes
// the lock). A holder of the lock leaves nothing appended meanwhile without a drain: a drain lets
// go only with the outbox empty (atomically), or asks for another drain (it yielded), or its job
// runs again (a retry, a pause, a crash's stalled job); an erasure asks for drains as it lets go.
// The new messages' sequence numbers come from one HINCRBY, and their ids and bodies go to the
// outbox and (the newest of them) the recent list in one RPUSH and one LPUSH, in the order they
// came. An id repeated within the call counts once, as its first occurrence. A message's
// `attempts` field is written by its first attempt (BEGIN); until then it is absent, read as 0.
// Numbers go to redis.call as strings where a script makes one per message: Redis turns a Lua
// number into text with printf's "%.17g", over a thousand instructions each under callgrind.
const APPEND = redisScript(`
local owner = redis.call('HGET', KEYS[1], 'user')
if owner and owner ~= ARGV[1] then return {-1, owner} end
if not owner then redis.call('HSET', KEYS[1], 'user', ARGV[1]) end
local n = #KEYS - 6
local res = {0}
local fresh = {}
local seen = {}
-- One EXISTS over all the messages' keys; only when some exist, one for each.
local known = n > 0 and redis.call('EXISTS', unpack(KEYS, 7)) or 0
for i = 1, n do
  local key = KEYS[6 + i]
  if seen[key] or (known > 0 and redis.call('EXISTS', key) == 1) then
    res[i + 1] = 0
  else
    seen[key] = true
    res[i + 1] = 1
    fresh[#fresh + 1] = i
  end
end
local added = #fresh
if added > 0 then
  local recent = tonumber(ARGV[5])
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', added) - added
  local ids = {}
  local bodies = {}
  for k, i in ipairs(fresh) do
    ids[k] = ARGV[6 + 2 * i]
    bodies[k] = ARGV[7 + 2 * i]
    redis.call('HSET', KEYS[6 + i], 'thread', ARGV[3], 'user', ARGV[1],
      'seq', string.format('%d', seq + k), 'status', 'queued',
      'accepted_at', ARGV[2], 'body', bodies[k])
  end
  redis.call('RPUSH', KEYS[2], unpack(ids))
  redis.call('ZADD', KEYS[3], 'NX', ARGV[2], ARGV[4])
  redis.call('SADD', KEYS[5], ARGV[3])
  if recent > 0 then
    -- Only the newest bodies (ARGV[5] of them) can stay in the list.
    redis.call('LPUSH', KEYS[4], unpack(bodies, math.max(1, #bodies - recent + 1)))
    redis.call('LTRIM', KEYS[4], 0, recent - 1)
    redis.call('EXPIRE', KEYS[4], ARGV[6])
  end
  if redis.call('EXISTS', KEYS[6]) == 0 then
    local requested = tonumber(redis.call('HGET', KEYS[1], 'drain'))
    if not requested or tonumber(ARGV[2]) - requested >= tonumber(ARGV[7]) then
      redis.call('HSET', KEYS[1], 'drain', ARGV[2])
      res[1] = 1
    end
  end
end
return res
`);

// KEYS: lock, thread hash. ARGV: token, ttl ms. Taking the lock clears the drain request mark:
// the holder reads the outbox after this (a drain) or asks for a drain of what it leaves (an
// erasure), so no message appended before is left without one.
const ACQUIRE = redisScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  redis.call('HDEL', KEYS[2], 'drain')
  return 1
end
return 0
`);

/**
 * Lua: the reply {user, inflight, then per message id, seq, attempts, accepted_at, body} of a
 * thread's head, up to `limit` messages. A message's key is `base` and its id as
 * `encodeURIComponent` spells it (see outbox-keys.ts); like BullMQ's job keys, it is built here
 * rather than passed in KEYS, which on a Redis Cluster holds because every key shares the prefix's
 * hash tag.
 */
const readHeadLua = (thread: string, outbox: string, limit: string, base: string): string => `
local function enc(s)
  if not string.find(s, "[^%w%-_%.!~%*'%(%)]") then return s end
  return (string.gsub(s, "[^%w%-_%.!~%*'%(%)]", function(c)
    return string.format('%%%02X', string.byte(c))
  end))
end
local t = redis.call('HMGET', ${thread}, 'user', 'inflight')
local res = {t[1], t[2]}
local n = 2
for _, id in ipairs(redis.call('LRANGE', ${outbox}, 0, tonumber(${limit}) - 1)) do
  local m = redis.call('HMGET', ${base} .. enc(id), 'seq', 'attempts', 'accepted_at', 'body')
  res[n + 1], res[n + 2], res[n + 3], res[n + 4], res[n + 5] = id, m[1], m[2], m[3], m[4]
  n = n + 5
end
return res
`;

// KEYS: lock, thread hash, outbox. ARGV: token, ttl ms, limit, message key base. ACQUIRE, then
// HEAD's reply; nil when another holds the thread.
const CLAIM = redisScript(`
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return false end
redis.call('HDEL', KEYS[2], 'drain')
${readHeadLua('KEYS[2]', 'KEYS[3]', 'ARGV[3]', 'ARGV[4]')}`);

// KEYS: thread hash, outbox. ARGV: limit, message key base.
const HEAD = redisScript(readHeadLua('KEYS[1]', 'KEYS[2]', 'ARGV[1]', 'ARGV[2]'));

const EXTEND = redisScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`);

// KEYS: lock, outbox, thread hash. ARGV: token. Releases the lock and clears the drain request
// mark only when the outbox is empty: 1 released, 0 messages wait (still held), -1 not held.
const RELEASE_IF_EMPTY = redisScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('LLEN', KEYS[2]) > 0 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[3], 'drain')
return 1
`);

const RELEASE = redisScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

// KEYS: thread hash, message hashes... ARGV: none.
const BEGIN = redisScript(`
redis.call('HSET', KEYS[1], 'inflight', '1')
for i = 2, #KEYS do redis.call('HINCRBY', KEYS[i], 'attempts', '1') end
return 1
`);

// KEYS: thread hash, message hashes... ARGV: reason, settled (0/1).
const HOLD = redisScript(`
if ARGV[2] == '1' then redis.call('HDEL', KEYS[1], 'inflight') end
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    if (tonumber(redis.call('HGET', KEYS[i], 'attempts')) or 0) > 0 then
      redis.call('HINCRBY', KEYS[i], 'attempts', -1)
    end
    redis.call('HSET', KEYS[i], 'error', ARGV[1])
  end
end
return 1
`);

// KEYS: lock, outbox, thread hash, pending zset, dead zset, recent list, user's thread set,
// context keys (3), message hashes... ARGV: token, pending member, thread id, client message ids...
// Removes exactly the given messages, so a message accepted while the erasure runs survives; the
// thread's own records go only when nothing of it is left.
const ERASE_THREAD = redisScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local first = 11
for i = first, #KEYS do
  local cmid = ARGV[3 + i - first + 1]
  redis.call('LREM', KEYS[2], 0, cmid)
  redis.call('ZREM', KEYS[5], cmid)
  redis.call('DEL', KEYS[i])
end
redis.call('DEL', KEYS[6], KEYS[8], KEYS[9], KEYS[10])
if redis.call('LLEN', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[3], KEYS[2])
  redis.call('ZREM', KEYS[4], ARGV[2])
  redis.call('SREM', KEYS[7], ARGV[3])
  return 0
end
return redis.call('LLEN', KEYS[2])
`);

// KEYS: dead zset, message hashes... ARGV: client message ids... Forgets dead messages only.
const PURGE = redisScript(`
local n = 0
for i = 2, #KEYS do
  if redis.call('HGET', KEYS[i], 'status') == 'dead' then
    redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[1], ARGV[i - 1])
    n = n + 1
  end
end
return n
`);

// KEYS: thread hash, outbox, pending zset, dead zset, user's thread set, message hashes...
// ARGV: user, now, thread id, pending member, then per message: client message id, body, seq,
// accepted at. Per message: 1 requeued, 0 pending (left alone), 2 another thread's (left alone).
// The thread's sequence counter is raised past every kept sequence, so later appends follow them.
const REQUEUE = redisScript(`
local owner = redis.call('HGET', KEYS[1], 'user')
if owner and owner ~= ARGV[1] then return {-1, owner} end
if not owner then redis.call('HSET', KEYS[1], 'user', ARGV[1]) end
local first = 6
local res = {0}
local added = 0
local top = tonumber(redis.call('HGET', KEYS[1], 'seq')) or 0
local counter = top
for i = first, #KEYS do
  local j = 5 + (i - first) * 4
  local cmid = ARGV[j]
  local h = redis.call('HMGET', KEYS[i], 'status', 'thread', 'seq', 'accepted_at')
  if h[1] == 'queued' then
    res[#res + 1] = 0
  elseif h[2] and h[2] ~= ARGV[3] then
    res[#res + 1] = 2
  else
    local seq = h[3] or ARGV[j + 2]
    redis.call('HSET', KEYS[i], 'thread', ARGV[3], 'user', ARGV[1], 'seq', seq,
      'status', 'queued', 'attempts', 0, 'accepted_at', h[4] or ARGV[j + 3], 'body', ARGV[j + 1])
    redis.call('HDEL', KEYS[i], 'error', 'dead_at', 'written_at')
    redis.call('PERSIST', KEYS[i])
    redis.call('ZREM', KEYS[4], cmid)
    redis.call('RPUSH', KEYS[2], cmid)
    if tonumber(seq) > top then top = tonumber(seq) end
    res[#res + 1] = 1
    added = added + 1
  end
end
if added > 0 then
  if top > counter then redis.call('HSET', KEYS[1], 'seq', top) end
  redis.call('ZADD', KEYS[3], 'NX', ARGV[2], ARGV[4])
  redis.call('SADD', KEYS[5], ARGV[3])
end
return res
`);

// KEYS: outbox, pending zset, dead zset, message hashes... ARGV: now, pending member, ids...
// Puts dead messages back at the end of their thread's outbox, in the order given (the caller
// sorts by accept sequence). Per message: 1 replayed, 0 not dead (left alone), -1 body gone.
const REPLAY = redisScript(`
local res = {}
local added = 0
for i = 4, #KEYS do
  local cmid = ARGV[2 + i - 3]
  local h = redis.call('HMGET', KEYS[i], 'status', 'body')
  if h[1] ~= 'dead' then
    res[#res + 1] = 0
  elseif not h[2] then
    res[#res + 1] = -1
  else
    redis.call('HSET', KEYS[i], 'status', 'queued', 'attempts', 0)
    redis.call('HDEL', KEYS[i], 'error', 'dead_at')
    redis.call('PERSIST', KEYS[i])
    redis.call('RPUSH', KEYS[1], cmid)
    redis.call('ZREM', KEYS[3], cmid)
    res[#res + 1] = 1
    added = added + 1
  end
end
if added > 0 then redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2]) end
return res
`);

// KEYS: lock, outbox, thread hash, pending zset, dead zset, message hashes...
// ARGV: token, status, now, ttl s, error, pending member, release if empty (0/1), keep the
// uncertain mark (0/1), client message ids...
const COMMIT = redisScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local n = #ARGV - 8
local head = redis.call('LRANGE', KEYS[2], 0, n - 1)
for i = 1, n do
  if head[i] ~= ARGV[8 + i] then return -2 end
end
redis.call('LTRIM', KEYS[2], n, -1)
for i = 1, n do
  local key = KEYS[5 + i]
  if ARGV[2] == 'written' then
    redis.call('HSET', key, 'status', 'written', 'written_at', ARGV[3])
    redis.call('HDEL', key, 'body', 'error')
  else
    redis.call('HSET', key, 'status', 'dead', 'error', ARGV[5], 'dead_at', ARGV[3])
    redis.call('ZADD', KEYS[5], ARGV[3], ARGV[8 + i])
  end
  redis.call('EXPIRE', key, ARGV[4])
end
if ARGV[8] ~= '1' then redis.call('HDEL', KEYS[3], 'inflight') end
local left = redis.call('LLEN', KEYS[2])
if left == 0 then
  redis.call('ZREM', KEYS[4], ARGV[6])
  if ARGV[7] == '1' then
    redis.call('DEL', KEYS[1])
    redis.call('HDEL', KEYS[3], 'drain')
  end
else
  redis.call('ZADD', KEYS[4], 'XX', ARGV[3], ARGV[6])
end
return left
`);

const num = (v: string | null | undefined): number =>
  v === null || v === undefined ? 0 : Number(v);

/** Creates the outbox over one Redis (or Cluster) client, which the caller owns. */
export function createOutbox(redis: ScriptClient, options: OutboxOptions = {}): Outbox {
  const keys = outboxKeys(options.prefix ?? '{memfleet}');
  const ttlS = options.dedupeWindowS ?? 30 * 86_400;
  const recentMessages = options.recentMessages ?? 4;
  const drainWindowMs = options.drainRequestWindowMs ?? 5000;

  /** The head from a HEAD-shaped reply: user, inflight, then five fields per message. */
  function headOf(reply: readonly unknown[]): OutboxHead {
    const [user, inflight] = reply;
    const messages: PendingMessage[] = [];
    for (let i = 2; i + 5 <= reply.length; i += 5) {
      const [id, seq, attempts, acceptedAt, body] = reply.slice(i, i + 5) as (string | null)[];
      messages.push({
        clientMessageId: String(id),
        seq: num(seq),
        attempts: num(attempts),
        acceptedAt: new Date(num(acceptedAt)),
        body: body ?? undefined,
      });
    }
    return {
      userId: typeof user === 'string' ? user : undefined,
      uncertain: inflight !== null && inflight !== undefined && inflight !== false,
      messages,
    };
  }

  return {
    keys,

    async append(tenant, threadId, userId, messages, nowMs) {
      const res = (await APPEND.run(
        redis,
        [
          keys.thread(tenant, threadId),
          keys.outbox(tenant, threadId),
          keys.pending(),
          keys.recent(tenant, threadId),
          keys.userThreads(tenant, userId),
          keys.lock(tenant, threadId),
          ...messages.map((m) => keys.message(tenant, m.clientMessageId)),
        ],
        [
          userId,
          nowMs,
          threadId,
          pendingMember(tenant, threadId),
          recentMessages,
          ttlS,
          drainWindowMs,
          ...messages.flatMap((m) => [m.clientMessageId, m.body]),
        ],
      )) as (number | string)[];
      if (res[0] === -1) {
        return { ok: false, reason: 'thread_owner_mismatch', ownerUserId: String(res[1]) };
      }
      return {
        ok: true,
        drainNeeded: res[0] === 1,
        results: res.slice(1).map((r) => (r === 1 ? 'queued' : 'duplicate')),
      };
    },

    async status(tenant, clientMessageId) {
      const h = await redis.hgetall(keys.message(tenant, clientMessageId));
      if (h.status === undefined || h.thread === undefined || h.user === undefined)
        return undefined;
      const status = h.status as MessageStatus['status'];
      return {
        clientMessageId,
        threadId: h.thread,
        userId: h.user,
        seq: num(h.seq),
        status,
        attempts: num(h.attempts),
        acceptedAt: new Date(num(h.accepted_at)),
        ...(h.written_at !== undefined ? { writtenAt: new Date(num(h.written_at)) } : {}),
        ...(h.error !== undefined ? { error: h.error } : {}),
      };
    },

    async acquireLock(tenant, threadId, token, ttlMs) {
      const res = await ACQUIRE.run(
        redis,
        [keys.lock(tenant, threadId), keys.thread(tenant, threadId)],
        [token, ttlMs],
      );
      return res === 1;
    },

    async extendLock(tenant, threadId, token, ttlMs) {
      return (await EXTEND.run(redis, [keys.lock(tenant, threadId)], [token, ttlMs])) === 1;
    },

    async lockTtlMs(tenant, threadId) {
      return Math.max(0, await redis.pttl(keys.lock(tenant, threadId)));
    },

    async releaseLock(tenant, threadId, token) {
      await RELEASE.run(redis, [keys.lock(tenant, threadId)], [token]);
    },

    async releaseIfEmpty(tenant, threadId, token) {
      const res = await RELEASE_IF_EMPTY.run(
        redis,
        [keys.lock(tenant, threadId), keys.outbox(tenant, threadId), keys.thread(tenant, threadId)],
        [token],
      );
      if (res === -1) throw new LockLostError('release');
      return res === 1;
    },

    async claim(tenant, threadId, token, ttlMs, limit) {
      const res = (await CLAIM.run(
        redis,
        [keys.lock(tenant, threadId), keys.thread(tenant, threadId), keys.outbox(tenant, threadId)],
        [token, ttlMs, limit, keys.message(tenant, '')],
      )) as (string | null)[] | null;
      return res === null ? undefined : headOf(res);
    },

    async readHead(tenant, threadId, limit) {
      const res = (await HEAD.run(
        redis,
        [keys.thread(tenant, threadId), keys.outbox(tenant, threadId)],
        [limit, keys.message(tenant, '')],
      )) as (string | null)[];
      return headOf(res);
    },

    async beginWrite(tenant, threadId, clientMessageIds) {
      await BEGIN.run(
        redis,
        [keys.thread(tenant, threadId), ...clientMessageIds.map((id) => keys.message(tenant, id))],
        [],
      );
    },

    async holdWrite(tenant, threadId, clientMessageIds, reason, settled) {
      await HOLD.run(
        redis,
        [keys.thread(tenant, threadId), ...clientMessageIds.map((id) => keys.message(tenant, id))],
        [reason, settled ? 1 : 0],
      );
    },

    async commit(
      tenant,
      threadId,
      token,
      clientMessageIds,
      outcome,
      nowMs,
      releaseIfEmpty,
      keepUncertain,
    ) {
      const res = (await COMMIT.run(
        redis,
        [
          keys.lock(tenant, threadId),
          keys.outbox(tenant, threadId),
          keys.thread(tenant, threadId),
          keys.pending(),
          keys.dead(tenant),
          ...clientMessageIds.map((id) => keys.message(tenant, id)),
        ],
        [
          token,
          outcome.status,
          nowMs,
          ttlS,
          outcome.status === 'dead' ? outcome.reason : '',
          pendingMember(tenant, threadId),
          releaseIfEmpty === true ? 1 : 0,
          keepUncertain === true ? 1 : 0,
          ...clientMessageIds,
        ],
      )) as number;
      if (res === -1) throw new LockLostError('commit');
      if (res === -2) throw new Error('outbox head changed under a held lock');
      return res;
    },

    async stalledThreads(beforeMs, limit) {
      const members = await redis.zrangebyscore(
        keys.pending(),
        '-inf',
        beforeMs,
        'LIMIT',
        0,
        limit,
      );
      return members.flatMap((m) => {
        const t = parsePendingMember(m);
        return t === undefined ? [] : [t];
      });
    },

    async touchPending(tenant, threadId, nowMs) {
      await redis.zadd(keys.pending(), 'XX', nowMs, pendingMember(tenant, threadId));
    },

    length: (tenant, threadId) => redis.llen(keys.outbox(tenant, threadId)),

    async threadOwner(tenant, threadId) {
      return (await redis.hget(keys.thread(tenant, threadId), 'user')) ?? undefined;
    },

    async deadLetters(tenant, offset, limit) {
      const flat = await redis.zrange(keys.dead(tenant), offset, offset + limit - 1, 'WITHSCORES');
      const out: { clientMessageId: string; deadAt: Date }[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        out.push({ clientMessageId: flat[i] ?? '', deadAt: new Date(Number(flat[i + 1])) });
      }
      return out;
    },

    async replayDead(tenant, threadId, clientMessageIds, nowMs) {
      if (clientMessageIds.length === 0) return [];
      const res = (await REPLAY.run(
        redis,
        [
          keys.outbox(tenant, threadId),
          keys.pending(),
          keys.dead(tenant),
          ...clientMessageIds.map((id) => keys.message(tenant, id)),
        ],
        [nowMs, pendingMember(tenant, threadId), ...clientMessageIds],
      )) as number[];
      return res.map((r) => (r === 1 ? 'replayed' : r === 0 ? 'not_dead' : 'body_gone'));
    },

    async requeue(tenant, threadId, userId, messages, nowMs) {
      if (messages.length === 0) return { ok: true, results: [] };
      const res = (await REQUEUE.run(
        redis,
        [
          keys.thread(tenant, threadId),
          keys.outbox(tenant, threadId),
          keys.pending(),
          keys.dead(tenant),
          keys.userThreads(tenant, userId),
          ...messages.map((m) => keys.message(tenant, m.clientMessageId)),
        ],
        [
          userId,
          nowMs,
          threadId,
          pendingMember(tenant, threadId),
          ...messages.flatMap((m) => [m.clientMessageId, m.body, m.seq, m.acceptedAtMs]),
        ],
      )) as (number | string)[];
      if (res[0] === -1) {
        return { ok: false, reason: 'thread_owner_mismatch', ownerUserId: String(res[1]) };
      }
      return {
        ok: true,
        results: res
          .slice(1)
          .map((r) => (r === 1 ? 'requeued' : r === 0 ? 'pending' : 'other_thread')),
      };
    },

    async purgeDead(tenant, clientMessageIds) {
      if (clientMessageIds.length === 0) return 0;
      return (await PURGE.run(
        redis,
        [keys.dead(tenant), ...clientMessageIds.map((id) => keys.message(tenant, id))],
        clientMessageIds,
      )) as number;
    },

    userThreads: (tenant, userId) => redis.smembers(keys.userThreads(tenant, userId)),

    pendingIds: (tenant, threadId) => redis.lrange(keys.outbox(tenant, threadId), 0, -1),

    async eraseThread(tenant, threadId, userId, token, clientMessageIds) {
      const res = (await ERASE_THREAD.run(
        redis,
        [
          keys.lock(tenant, threadId),
          keys.outbox(tenant, threadId),
          keys.thread(tenant, threadId),
          keys.pending(),
          keys.dead(tenant),
          keys.recent(tenant, threadId),
          keys.userThreads(tenant, userId),
          ...['off', 'write_only', 'read_write'].map((m) => keys.context(tenant, threadId, m)),
          ...clientMessageIds.map((id) => keys.message(tenant, id)),
        ],
        [token, pendingMember(tenant, threadId), threadId, ...clientMessageIds],
      )) as number;
      if (res === -1) throw new LockLostError('erase');
      return res;
    },

    async recent(tenant, threadId, limit) {
      if (limit <= 0) return [];
      const newestFirst = await redis.lrange(keys.recent(tenant, threadId), 0, limit - 1);
      return newestFirst.reverse();
    },
  };
}
