import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { MEMORY_MODES, TENANT_RE, type MemoryMode } from '@memfleet/config/load-config';
import { toError } from '@memfleet/errors/to-error';
import type { Logger } from '@memfleet/logger/create-logger';
import type { FlagMetrics } from '@memfleet/metrics/flag-metrics';
import { redisScript } from '@memfleet/outbox/redis-script';

/** A tenant's own mode and read canary, in place of the global ones. */
export interface TenantOverride {
  mode?: MemoryMode;
  canaryPercent?: number;
}

/** Reads forced to write_only, fleet-wide, until `untilMs` (this process's clock). */
export interface Downgrade {
  reason: string;
  untilMs: number;
}

/** The flags in force, as this process last loaded them. */
export interface FlagSnapshot {
  /** Global mode in force: the env default, overridden from Redis. Downgrade not applied. */
  mode: MemoryMode;
  /** Global read canary, 0..100. */
  canaryPercent: number;
  tenants: Record<string, TenantOverride>;
  /** Reads forced to write_only until `untilMs`; undefined when none is active. */
  downgrade: Downgrade | undefined;
  /** `'redis'` when any override or a downgrade from Redis is in force, else `'env'`. */
  source: 'env' | 'redis';
}

/** What one thread of one tenant may do. */
export interface ThreadFlags {
  /** Mode in force for this tenant, downgrade applied (read_write -> write_only). */
  mode: MemoryMode;
  /** `mode !== 'off'`. */
  writes: boolean;
  /** `mode === 'read_write' && inCanary`. */
  reads: boolean;
  inCanary: boolean;
  /** Why `reads` is false: `mode_off` also for write_only and for a downgrade. */
  readBlockedBy?: 'mode_off' | 'not_in_canary';
}

/** A change to the overrides; `null` removes one (back to the global value, or to env). */
export interface FlagPatch {
  mode?: MemoryMode | null;
  canaryPercent?: number | null;
  /** `null` for a tenant removes both of its overrides. */
  tenants?: Record<string, { mode?: MemoryMode | null; canaryPercent?: number | null } | null>;
  /** Clears an active downgrade (and the fleet's count of auth failures). */
  downgrade?: null;
}

/** The live flags of one process: memory mode, read canary, per-tenant overrides, read downgrade. */
export interface Flags {
  /** Loads from Redis once, then reloads every refreshMs (timer unref'd) so every process sees a change within 2 s. */
  start(): Promise<void>;
  stop(): void;
  snapshot(): FlagSnapshot;
  forThread(tenant: string, threadId: string): ThreadFlags;
  /** Writes overrides to Redis (atomically) and returns the new snapshot; this process sees it at once. */
  update(patch: FlagPatch): Promise<FlagSnapshot>;
  /** Counts a 401/403 from the backend fleet-wide; after `downgradeAuthFailures` in a row with no success between, reads are downgraded for downgradeMs (reason 'auth'); returns true when this call started a downgrade. */
  recordAuthFailure(): Promise<boolean>;
  /** A backend call succeeded: resets the fleet-wide count. */
  recordAuthSuccess(): Promise<void>;
  refresh(): Promise<void>;
}

/** Options of {@link createFlags}. */
export interface FlagsOptions {
  /** Key prefix of the fleet (a hash tag such as `{memfleet}`); every key starts with it. */
  prefix: string;
  /** The env's mode and canary (`MEMORY_MODE`, `READ_CANARY_PERCENT`), in force unless overridden. */
  defaults: { mode: MemoryMode; canaryPercent: number };
  /** Reload interval (`FLAGS_REFRESH_MS`, default 1000). */
  refreshMs: number;
  /** How long a read downgrade lasts (`FLAGS_DOWNGRADE_MS`, default 600000). */
  downgradeMs: number;
  /** Consecutive auth failures that start a downgrade (`FLAGS_DOWNGRADE_AUTH_FAILURES`, default 3). */
  downgradeAuthFailures: number;
  metrics?: FlagMetrics;
  logger?: Pick<Logger, 'info' | 'warn'>;
  /** Clock, for tests. Default `Date.now`. */
  now?: () => number;
}

/**
 * Stable canary selection by a hash of the thread id (same answer in every process, every run):
 * the thread's bucket (0..9999, from SHA-256) is below `percent * 100`.
 */
export function inCanary(threadId: string, percent: number): boolean {
  if (!(percent > 0)) return false;
  if (percent >= 100) return true;
  const bucket = createHash('sha256').update(threadId).digest().readUInt32BE(0) % 10_000;
  return bucket < percent * 100;
}

const MODE_FIELD = 'mode';
const CANARY_FIELD = 'canary_percent';
const tenantField = (tenant: string, field: string): string => `tenant:${tenant}:${field}`;
const TENANT_FIELD = /^tenant:([^:]+):(mode|canary_percent)$/;
/** A refresh slower than this is given up (its answer still applies if it comes). */
const MIN_REFRESH_TIMEOUT_MS = 1000;
const WARN_EVERY_MS = 60_000;

const isMode = (v: unknown): v is MemoryMode =>
  typeof v === 'string' && (MEMORY_MODES as readonly string[]).includes(v);
const isPercent = (v: unknown): v is number =>
  typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 100;

// KEYS: failure count, downgrade. ARGV: threshold, downgrade ms, reason.
// Returns 1 when this call started the downgrade. The count is reset only by a success (or by
// clearing the downgrade), so under sustained failures a downgrade that expires starts again.
const AUTH_FAILURE = redisScript(`
local n = redis.call('INCR', KEYS[1])
if n < tonumber(ARGV[1]) then return 0 end
local t = redis.call('TIME')
local value = cjson.encode({reason = ARGV[3], since = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)})
if redis.call('SET', KEYS[2], value, 'PX', ARGV[2], 'NX') then return 1 end
return 0
`);

interface Overrides {
  mode?: MemoryMode;
  canaryPercent?: number;
  tenants: Map<string, TenantOverride>;
}

function checkPatch(patch: FlagPatch): void {
  const bad = (field: string, problem: string): never => {
    throw new RangeError(`${field}: ${problem}`);
  };
  const checkMode = (field: string, v: unknown) => {
    if (v !== undefined && v !== null && !isMode(v))
      bad(field, `must be ${MEMORY_MODES.join(', ')}`);
  };
  const checkPercent = (field: string, v: unknown) => {
    if (v !== undefined && v !== null && !isPercent(v)) bad(field, 'must be a number 0..100');
  };
  checkMode('mode', patch.mode);
  checkPercent('canaryPercent', patch.canaryPercent);
  if (patch.downgrade !== undefined && patch.downgrade !== null) {
    bad('downgrade', 'can only be null (clears it)');
  }
  for (const [tenant, o] of Object.entries(patch.tenants ?? {})) {
    if (!TENANT_RE.test(tenant)) bad(`tenants.${tenant}`, 'not a tenant name');
    checkMode(`tenants.${tenant}.mode`, o?.mode);
    checkPercent(`tenants.${tenant}.canaryPercent`, o?.canaryPercent);
  }
}

/**
 * The live flags over Redis. Overrides live in the hash `<prefix>:flags` (fields `mode`,
 * `canary_percent`, `tenant:<t>:mode`, `tenant:<t>:canary_percent`), a read downgrade in
 * `<prefix>:flags:downgrade` (expiring by TTL, so every process agrees when it ends), the
 * fleet's count of consecutive auth failures in `<prefix>:flags:auth_failures`.
 *
 * Reads (`snapshot`, `forThread`) are local and synchronous; `start()` keeps them within
 * `refreshMs` of Redis. When Redis cannot be reached, the last known flags stay in force and a
 * warning is logged; no method but `update` ever rejects.
 */
export function createFlags(redis: Redis | Cluster, options: FlagsOptions): Flags {
  const { prefix, defaults, refreshMs, downgradeMs, downgradeAuthFailures, metrics, logger } =
    options;
  const now = options.now ?? Date.now;
  if (!isMode(defaults.mode)) throw new RangeError(`defaults.mode: ${String(defaults.mode)}`);
  if (!isPercent(defaults.canaryPercent)) {
    throw new RangeError(`defaults.canaryPercent: ${String(defaults.canaryPercent)}`);
  }
  const flagsKey = `${prefix}:flags`;
  const downgradeKey = `${prefix}:flags:downgrade`;
  const failuresKey = `${prefix}:flags:auth_failures`;

  let overrides: Overrides = { tenants: new Map() };
  let downgrade: Downgrade | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let inflight: Promise<void> | undefined;
  // Loads are applied in the order they were sent, so a slow answer never undoes a newer one.
  let issued = 0;
  let applied = 0;
  let failingSince: number | undefined;
  let lastWarnAt = 0;
  let lastState = '';
  const warnedFields = new Set<string>();

  const activeDowngrade = (): Downgrade | undefined =>
    downgrade !== undefined && now() < downgrade.untilMs ? downgrade : undefined;

  const globalMode = (): MemoryMode => overrides.mode ?? defaults.mode;

  function publish(): void {
    const d = activeDowngrade();
    const base = globalMode();
    const effective = d !== undefined && base === 'read_write' ? 'write_only' : base;
    if (metrics === undefined) return;
    for (const m of MEMORY_MODES) metrics.memoryMode.set({ mode: m }, m === effective ? 1 : 0);
    metrics.readDowngraded.set(d === undefined ? 0 : 1);
  }

  function snapshot(): FlagSnapshot {
    const d = activeDowngrade();
    return {
      mode: globalMode(),
      canaryPercent: overrides.canaryPercent ?? defaults.canaryPercent,
      tenants: Object.fromEntries([...overrides.tenants].map(([t, o]) => [t, { ...o }])),
      downgrade: d === undefined ? undefined : { ...d },
      source:
        overrides.mode !== undefined ||
        overrides.canaryPercent !== undefined ||
        overrides.tenants.size > 0 ||
        d !== undefined
          ? 'redis'
          : 'env',
    };
  }

  function warnField(field: string, value: string): void {
    const key = `${field}=${value}`;
    if (warnedFields.has(key)) return;
    warnedFields.add(key);
    logger?.warn('flags: ignoring an unreadable field in Redis', { key: flagsKey, field, value });
  }

  function parseOverrides(fields: Record<string, string>): Overrides {
    const parsed: Overrides = { tenants: new Map() };
    const tenant = (t: string): TenantOverride => {
      let o = parsed.tenants.get(t);
      if (o === undefined) parsed.tenants.set(t, (o = {}));
      return o;
    };
    for (const [field, value] of Object.entries(fields)) {
      const percent = value.trim() === '' ? NaN : Number(value);
      const m = TENANT_FIELD.exec(field);
      if (field === MODE_FIELD && isMode(value)) parsed.mode = value;
      else if (field === CANARY_FIELD && isPercent(percent)) parsed.canaryPercent = percent;
      else if (m?.[1] !== undefined && TENANT_RE.test(m[1]) && m[2] === MODE_FIELD && isMode(value))
        tenant(m[1]).mode = value;
      else if (m?.[1] !== undefined && TENANT_RE.test(m[1]) && isPercent(percent))
        tenant(m[1]).canaryPercent = percent;
      else warnField(field, value);
    }
    return parsed;
  }

  function parseDowngrade(value: string | null, pttl: number): Downgrade | undefined {
    if (value === null || pttl <= 0) return undefined;
    let reason = 'unknown';
    try {
      const v = JSON.parse(value) as { reason?: unknown };
      if (typeof v.reason === 'string') reason = v.reason;
    } catch {
      warnField('downgrade', value);
    }
    // The TTL lives in Redis, so every process ends the downgrade at the same moment.
    return { reason, untilMs: now() + pttl };
  }

  function describe(): string {
    const s = snapshot();
    return JSON.stringify({ ...s, downgrade: s.downgrade?.reason ?? null });
  }

  async function load(): Promise<void> {
    const seq = ++issued;
    const res = await redis.multi().hgetall(flagsKey).get(downgradeKey).pttl(downgradeKey).exec();
    if (res === null) throw new Error('flags load: transaction aborted');
    for (const [err] of res) if (err) throw err;
    if (seq < applied) return;
    applied = seq;
    const [fields, dgValue, pttl] = res.map(([, v]) => v) as [
      Record<string, string>,
      string | null,
      number,
    ];
    overrides = parseOverrides(fields);
    downgrade = parseDowngrade(dgValue, pttl);
    publish();
    const state = describe();
    if (state !== lastState) {
      if (lastState !== '') logger?.info('flags changed', { flags: JSON.parse(state) as unknown });
      lastState = state;
    }
  }

  async function refresh(): Promise<void> {
    inflight ??= load().finally(() => {
      inflight = undefined;
    });
    let timeout: NodeJS.Timeout | undefined;
    const timeoutMs = Math.max(MIN_REFRESH_TIMEOUT_MS, refreshMs);
    try {
      await Promise.race([
        inflight,
        new Promise<never>((_, reject) => {
          timeout = setTimeout(() => {
            reject(new Error(`no answer from Redis within ${timeoutMs} ms`));
          }, timeoutMs);
          timeout.unref();
        }),
      ]);
      if (failingSince !== undefined) {
        logger?.info('flags: Redis reachable again', { failed_for_ms: now() - failingSince });
        failingSince = undefined;
      }
    } catch (err: unknown) {
      const t = now();
      if (failingSince === undefined || t - lastWarnAt >= WARN_EVERY_MS) {
        logger?.warn('flags: refresh failed; keeping the last known flags', {
          err: toError(err),
        });
        lastWarnAt = t;
      }
      failingSince ??= t;
      // Expiry of a downgrade is local arithmetic: it still ends on time without Redis.
      publish();
    } finally {
      clearTimeout(timeout);
    }
  }

  function schedule(): void {
    if (!running) return;
    timer = setTimeout(() => {
      void refresh().then(schedule);
    }, refreshMs);
    timer.unref();
  }

  if (metrics !== undefined) {
    // Every series exists from the start, so a dashboard shows 0 rather than nothing.
    metrics.readDowngrades.inc({ reason: 'auth' }, 0);
    publish();
  }

  return {
    async start() {
      if (running) return;
      running = true;
      await refresh();
      logger?.info('flags loaded', { flags: JSON.parse(describe()) as unknown });
      schedule();
    },

    stop() {
      running = false;
      clearTimeout(timer);
      timer = undefined;
    },

    snapshot,

    forThread(tenant, threadId) {
      const t = overrides.tenants.get(tenant);
      const base = t?.mode ?? globalMode();
      const mode = base === 'read_write' && activeDowngrade() !== undefined ? 'write_only' : base;
      const canary = inCanary(
        threadId,
        t?.canaryPercent ?? overrides.canaryPercent ?? defaults.canaryPercent,
      );
      const reads = mode === 'read_write' && canary;
      return {
        mode,
        writes: mode !== 'off',
        reads,
        inCanary: canary,
        ...(reads ? {} : { readBlockedBy: mode === 'read_write' ? 'not_in_canary' : 'mode_off' }),
      };
    },

    async update(patch) {
      checkPatch(patch);
      const set: Record<string, string> = {};
      const del: string[] = [];
      const put = (field: string, v: string | number | null | undefined) => {
        if (v === null) del.push(field);
        else if (v !== undefined) set[field] = String(v);
      };
      put(MODE_FIELD, patch.mode);
      put(CANARY_FIELD, patch.canaryPercent);
      for (const [tenant, o] of Object.entries(patch.tenants ?? {})) {
        put(tenantField(tenant, MODE_FIELD), o === null ? null : o.mode);
        put(tenantField(tenant, CANARY_FIELD), o === null ? null : o.canaryPercent);
      }
      const changes = Object.keys(set).length > 0 || del.length > 0 || patch.downgrade === null;
      if (changes) {
        // One transaction: every process sees the whole patch or none of it.
        const tx = redis.multi();
        if (Object.keys(set).length > 0) tx.hset(flagsKey, set);
        if (del.length > 0) tx.hdel(flagsKey, ...del);
        if (patch.downgrade === null) tx.del(downgradeKey, failuresKey);
        const res = await tx.exec();
        if (res === null) throw new Error('flags update: transaction aborted');
        for (const [err] of res) if (err) throw err;
        logger?.info('flags updated', { patch });
      }
      await load();
      return snapshot();
    },

    async recordAuthFailure() {
      try {
        const started =
          (await AUTH_FAILURE.run(
            redis,
            [failuresKey, downgradeKey],
            [downgradeAuthFailures, downgradeMs, 'auth'],
          )) === 1;
        if (started) {
          downgrade = { reason: 'auth', untilMs: now() + downgradeMs };
          metrics?.readDowngrades.inc({ reason: 'auth' });
          publish();
          logger?.warn('reads downgraded to write_only: the backend keeps rejecting credentials', {
            failures: downgradeAuthFailures,
            for_ms: downgradeMs,
          });
        }
        return started;
      } catch (err: unknown) {
        logger?.warn('flags: could not count an auth failure', { err: toError(err) });
        return false;
      }
    },

    async recordAuthSuccess() {
      try {
        await redis.del(failuresKey);
      } catch (err: unknown) {
        logger?.warn('flags: could not reset the auth failure count', { err: toError(err) });
      }
    },

    refresh,
  };
}
