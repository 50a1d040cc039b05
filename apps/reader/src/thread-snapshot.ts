import { redisScript, type ScriptClient } from '@memfleet/outbox/redis-script';
import { outboxKeys } from '@memfleet/outbox/outbox-keys';

/** What a read needs to know about a thread before it answers, read from Redis in one call. */
export interface ThreadSnapshot {
  /** The user the thread belongs to; undefined when the tenant has no such thread. */
  owner: string | undefined;
  /** Bodies of the thread's last accepted messages, oldest first. */
  recent: string[];
  /** The writers' breaker is open or the backend's 429 pause runs (fleet-wide). */
  writeGateBlocked: boolean;
  /** The read breaker is open and has not cooled down yet. */
  readGateBlocked: boolean;
  /** The cached context of the thread in the asked mode, if any. */
  cached: string | undefined;
  /** Parts of the snapshot that could not be read (a key of the wrong type), for the log. */
  failed: string[];
}

/** Reads a {@link ThreadSnapshot}. */
export type SnapshotReader = (
  tenant: string,
  threadId: string,
  mode: string,
  /** Whether the read may use the backend: only then are the gates and the cache looked at. */
  withBackend: boolean,
) => Promise<ThreadSnapshot>;

// KEYS: thread hash, recent list, write gate hash, read gate hash, context cache.
// ARGV: recent messages wanted, with backend (0/1).
// Returns {owner, recent (newest first), write gate blocked, read gate blocked, cached, failed}.
// Everything but the owner is read with pcall: a broken key costs that part of the answer (the
// read then goes on without it), never the answer itself. The gates are read as the backend gate's
// `state()` reads them, against the Redis server's clock that every process shares.
const SNAPSHOT = redisScript(`
local owner = redis.call('HGET', KEYS[1], 'user')
if not owner then return {false} end
local failed = {}
local recent = {}
local wanted = tonumber(ARGV[1])
if wanted > 0 then
  local r = redis.pcall('LRANGE', KEYS[2], 0, wanted - 1)
  if r.err then failed[#failed + 1] = 'recent' else recent = r end
end
if ARGV[2] ~= '1' then return {owner, recent, 0, 0, false, failed} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function blocked(key, name)
  local g = redis.pcall('HMGET', key, 'state', 'until', 'rl_until')
  if g.err then
    failed[#failed + 1] = name
    return 0
  end
  if (tonumber(g[3]) or 0) > now then return 1 end
  if g[1] == 'open' and (tonumber(g[2]) or 0) > now then return 1 end
  return 0
end
local writeBlocked = blocked(KEYS[3], 'write gate')
local readBlocked = blocked(KEYS[4], 'read gate')
local cached = redis.pcall('GET', KEYS[5])
if type(cached) == 'table' and cached.err then
  failed[#failed + 1] = 'cache'
  cached = false
end
return {owner, recent, writeBlocked, readBlocked, cached, failed}
`);

/**
 * The reader's one Redis call per read: the thread's owner, its last accepted messages, the
 * writers' and the read breaker's state and the cached context, in one script (one command, one
 * round trip). The gate hashes are those `createBackendGate` keeps for `backend` (writes) and
 * `<backend>:read` (reads).
 */
export function createSnapshotReader(
  redis: ScriptClient,
  options: { prefix: string; backend: string; recentMessages: number },
): SnapshotReader {
  const keys = outboxKeys(options.prefix);
  const writeGate = `${options.prefix}:gate:${options.backend}`;
  const readGate = `${options.prefix}:gate:${options.backend}:read`;
  const wanted = Math.max(0, options.recentMessages);
  return async (tenant, threadId, mode, withBackend) => {
    const res = (await SNAPSHOT.run(
      redis,
      [
        keys.thread(tenant, threadId),
        keys.recent(tenant, threadId),
        writeGate,
        readGate,
        keys.context(tenant, threadId, mode),
      ],
      [wanted, withBackend ? 1 : 0],
    )) as [
      owner: string | null,
      recent?: string[],
      writeBlocked?: number,
      readBlocked?: number,
      cached?: string | null,
      failed?: string[],
    ];
    const [owner, recent = [], writeBlocked, readBlocked, cached, failed = []] = res;
    return {
      owner: owner ?? undefined,
      recent: recent.reverse(),
      writeGateBlocked: writeBlocked === 1,
      readGateBlocked: readBlocked === 1,
      cached: cached ?? undefined,
      failed,
    };
  };
}
