import { redisScript, type ScriptClient } from '@memfleet/outbox/redis-script';
import type { BackendErrorKind } from './backend-error.ts';

/** Why calls to a backend are held back. */
export type PauseReason = 'rate_limited' | 'breaker_open' | 'auth';

/** Answer of {@link BackendGate.acquire}. */
export type GatePermit =
  | {
      verdict: 'go';
      /** The breaker has counted failures: report success so the count resets. */
      dirty: boolean;
    }
  /** The breaker was open and has cooled down: this call is the one probe the fleet makes. */
  | { verdict: 'probe'; reason: PauseReason }
  | { verdict: 'wait'; waitMs: number; reason: PauseReason };

/** Answer of {@link BackendGate.failure}. */
export type FailureVerdict =
  /** An ordinary failure of this call: it counts against the messages' attempts. */
  | { counted: true }
  /** The backend, not the messages, is at fault: hold the messages, no attempt used. */
  | { counted: false; waitMs: number; reason: PauseReason; opened: boolean };

/** Fleet-wide state of a backend's gate, for metrics. */
export interface GateState {
  /** 0 closed, 1 half-open (cooled down, probing), 2 open. */
  breaker: 0 | 1 | 2;
  reason: 'failures' | 'auth' | undefined;
  rateLimitedForMs: number;
}

/** Settings of {@link createBackendGate}. */
export interface BackendGateSettings {
  /** Transient failures within `windowMs` (with no success between) that open the breaker. */
  failureThreshold: number;
  windowMs: number;
  /** How long the breaker stays open before one probe goes through. */
  cooldownMs: number;
  /** How long calls hold after the backend rejected the credentials, before a probe. */
  authRetryMs: number;
  /** Pause after a 429 without a usable Retry-After. */
  rateLimitDefaultMs: number;
  /** Lifetime of a probe's claim: the longest a probe call can take. */
  probeTtlMs: number;
}

/** The fleet's shared view of one backend: rate-limit pause, circuit breaker, credential hold. */
export interface BackendGate {
  /** Asks before every backend call whether it may go out. */
  acquire(): Promise<GatePermit>;
  /**
   * Reports a call that reached the backend and got an answer; returns true if it closed the
   * breaker. An open breaker is closed only by its probe (`probe` true).
   */
  success(probe: boolean): Promise<boolean>;
  /** Reports a failed call by the kind of its error. */
  failure(
    kind: Exclude<BackendErrorKind, 'permanent'>,
    probe: boolean,
    retryAfterMs?: number,
  ): Promise<FailureVerdict>;
  /** Current state, read from Redis. */
  state(): Promise<GateState>;
}

// Times come from the Redis server's clock, so every worker of the fleet agrees on them.
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// KEYS: gate hash, probe key. ARGV: probe ttl ms.
// Returns {verdict, wait ms, reason, dirty}.
const ACQUIRE = redisScript(`${NOW}
local g = redis.call('HMGET', KEYS[1], 'rl_until', 'state', 'until', 'reason', 'failures')
local rl = tonumber(g[1]) or 0
if rl > now then return {'wait', rl - now, 'rate_limited', 0} end
if g[2] ~= 'open' then
  return {'go', 0, '', (tonumber(g[5]) or 0) > 0 and 1 or 0}
end
local reason = g[4] == 'auth' and 'auth' or 'breaker_open'
local untilMs = tonumber(g[3]) or 0
if now < untilMs then return {'wait', untilMs - now, reason, 0} end
if redis.call('SET', KEYS[2], '1', 'PX', ARGV[1], 'NX') then return {'probe', 0, reason, 0} end
return {'wait', math.max(50, redis.call('PTTL', KEYS[2])), reason, 0}
`);

// KEYS: gate hash, probe key. ARGV: probe (0/1). Returns 1 when this closed an open breaker.
// Only the probe closes an open breaker: a call let through before it opened, answering late,
// says nothing about the backend now.
const SUCCESS = redisScript(`
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'open' and ARGV[1] ~= '1' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0)
redis.call('HDEL', KEYS[1], 'until', 'reason')
redis.call('DEL', KEYS[2])
if state == 'open' then return 1 end
return 0
`);

// KEYS: gate hash, probe key.
// ARGV: kind, probe (0/1), threshold, window ms, cooldown ms, auth retry ms, retry-after ms.
// Returns {counted, wait ms, reason, opened}.
const FAILURE = redisScript(`${NOW}
local kind = ARGV[1]
if ARGV[2] == '1' then redis.call('DEL', KEYS[2]) end
if kind == 'rate_limited' then
  local rl = math.max(tonumber(redis.call('HGET', KEYS[1], 'rl_until')) or 0, now + tonumber(ARGV[7]))
  redis.call('HSET', KEYS[1], 'rl_until', rl)
  return {0, rl - now, 'rate_limited', 0}
end
local g = redis.call('HMGET', KEYS[1], 'state', 'until', 'reason', 'failures', 'window_start')
if kind == 'auth' then
  local untilMs = now + tonumber(ARGV[6])
  redis.call('HSET', KEYS[1], 'state', 'open', 'reason', 'auth', 'until', untilMs)
  return {0, untilMs - now, 'auth', g[1] ~= 'open' and 1 or 0}
end
if g[1] == 'open' then
  local untilMs = tonumber(g[2]) or 0
  if ARGV[2] == '1' or untilMs <= now then
    untilMs = now + tonumber(ARGV[5])
    redis.call('HSET', KEYS[1], 'until', untilMs, 'reason', 'failures')
  end
  local reason = (redis.call('HGET', KEYS[1], 'reason') == 'auth') and 'auth' or 'breaker_open'
  return {0, untilMs - now, reason, 0}
end
local failures = tonumber(g[4]) or 0
local windowStart = tonumber(g[5]) or 0
if now - windowStart > tonumber(ARGV[4]) then
  failures = 0
  windowStart = now
end
failures = failures + 1
if failures >= tonumber(ARGV[3]) then
  local untilMs = now + tonumber(ARGV[5])
  redis.call('HSET', KEYS[1], 'state', 'open', 'reason', 'failures', 'until', untilMs,
    'failures', failures, 'window_start', windowStart)
  return {0, untilMs - now, 'breaker_open', 1}
end
redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', failures, 'window_start', windowStart)
return {1, 0, '', 0}
`);

// KEYS: gate hash. Returns {state, reason, until - now, rl_until - now}.
const STATE = redisScript(`${NOW}
local g = redis.call('HMGET', KEYS[1], 'state', 'reason', 'until', 'rl_until')
return {g[1] or 'closed', g[2] or '', (tonumber(g[3]) or 0) - now, (tonumber(g[4]) or 0) - now}
`);

const asReason = (r: unknown): PauseReason =>
  r === 'auth' ? 'auth' : r === 'rate_limited' ? 'rate_limited' : 'breaker_open';

/**
 * Creates the gate of one backend over Redis. All workers of a fleet that share `prefix` share the
 * gate: a 429 pauses every worker until its Retry-After has passed; sustained transient failures
 * open the breaker for everyone, and after `cooldownMs` a single probe call decides whether it
 * closes; rejected credentials hold every write until a probe gets through.
 */
export function createBackendGate(
  redis: ScriptClient,
  options: { prefix: string; backend: string; settings: BackendGateSettings },
): BackendGate {
  const { settings } = options;
  const gateKey = `${options.prefix}:gate:${options.backend}`;
  const probeKey = `${gateKey}:probe`;
  const keys = [gateKey, probeKey];

  return {
    async acquire() {
      const [verdict, waitMs, reason, dirty] = (await ACQUIRE.run(redis, keys, [
        settings.probeTtlMs,
      ])) as [string, number, string, number];
      if (verdict === 'go') return { verdict: 'go', dirty: dirty === 1 };
      if (verdict === 'probe') return { verdict: 'probe', reason: asReason(reason) };
      return { verdict: 'wait', waitMs: Math.max(1, waitMs), reason: asReason(reason) };
    },

    async success(probe) {
      return (await SUCCESS.run(redis, keys, [probe ? 1 : 0])) === 1;
    },

    async failure(kind, probe, retryAfterMs) {
      const [counted, waitMs, reason, opened] = (await FAILURE.run(redis, keys, [
        kind,
        probe ? 1 : 0,
        settings.failureThreshold,
        settings.windowMs,
        settings.cooldownMs,
        settings.authRetryMs,
        Math.max(1, Math.round(retryAfterMs ?? settings.rateLimitDefaultMs)),
      ])) as [number, number, string, number];
      if (counted === 1) return { counted: true };
      return {
        counted: false,
        waitMs: Math.max(1, waitMs),
        reason: asReason(reason),
        opened: opened === 1,
      };
    },

    async state() {
      const [state, reason, untilIn, rlIn] = (await STATE.run(redis, [gateKey], [])) as [
        string,
        string,
        number,
        number,
      ];
      const open = state === 'open';
      return {
        breaker: !open ? 0 : untilIn > 0 ? 2 : 1,
        reason: !open ? undefined : reason === 'auth' ? 'auth' : 'failures',
        rateLimitedForMs: Math.max(0, rlIn),
      };
    },
  };
}
