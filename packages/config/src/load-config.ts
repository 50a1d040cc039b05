import { readFileSync } from 'node:fs';
import { keyPrefixSchema } from '@memfleet/redis/redis-env';
import { parseRedisTarget, type RedisTarget } from '@memfleet/redis/redis-target';
import { z } from 'zod';
import { parseApiKeys, parseKeySpec, type ApiKeyEntry } from './api-keys.ts';

export { TENANT_RE, type ApiKeyEntry, type KeyScope } from './api-keys.ts';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const backendSchema = z.enum(['postgres', 'zep', 'mem0'], {
  error: 'supported backends: postgres, zep, mem0',
});

/** Zep Cloud's v3 API base (the SDK's default environment). */
export const ZEP_CLOUD_URL = 'https://api.getzep.com/api/v2';
/** mem0's hosted platform. */
export const MEM0_PLATFORM_URL = 'https://api.mem0.ai';
const modeSchema = z.enum(['off', 'write_only', 'read_write']);
/** Every memory mode, from no memory at all to writes and reads. */
export const MEMORY_MODES = modeSchema.options;

const schema = z.object({
  NODE_ENV: z.string().default('development'),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']).default('info'),
  REDIS_URL: z.string().optional(),
  REDIS_CLUSTER_NODES: z.string().optional(),
  REDIS_KEY_PREFIX: keyPrefixSchema,
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }),
  MEMORY_BACKEND: backendSchema.default('postgres'),
  MEMORY_MODE: modeSchema.optional(),
  FLAG_ZEP_WRITE: z.enum(['true', 'false', '1', '0']).optional(),
  FLAG_ZEP_READ: z.enum(['true', 'false', '1', '0']).optional(),
  MEMFLEET_API_KEYS: z.string().optional(),
  MEMFLEET_API_KEYS_FILE: z.string().optional(),
  MEMFLEET_ADMIN_KEY: z.string().min(16, 'must be at least 16 characters'),
  MEMFLEET_DASHBOARD_KEYS: z.string().optional(),
  RATE_LIMIT_ENQUEUE_PER_S: int(0, 1_000_000).default(1000),
  RATE_LIMIT_ENQUEUE_BURST: int(0, 10_000_000).default(2000),
  RATE_LIMIT_READ_PER_S: int(0, 1_000_000).default(2000),
  RATE_LIMIT_READ_BURST: int(0, 10_000_000).default(4000),
  READ_CANARY_PERCENT: int(0, 100).default(100),
  READ_BUDGET_MS: int(10, 60_000).default(250),
  READER_PORT: int(0, 65_535).default(3001),
  READER_PROCESSES: int(1, 64).default(1),
  READER_HOST: z.string().min(1).default('127.0.0.1'),
  READ_CACHE_TTL_MS: int(0, 3_600_000).default(30_000),
  READ_FALLBACK_MESSAGES: int(0, 100).default(4),
  READ_BREAKER_FAILURES: int(1, 10_000).default(5),
  READ_BREAKER_COOLDOWN_MS: int(100, 3_600_000).default(5000),
  FLAGS_REFRESH_MS: int(100, 60_000).default(1000),
  FLAGS_DOWNGRADE_MS: int(1000, 7 * 86_400_000).default(600_000),
  FLAGS_DOWNGRADE_AUTH_FAILURES: int(1, 10_000).default(3),
  API_PORT: int(0, 65_535).default(3000),
  API_PROCESSES: int(1, 64).default(1),
  API_HOST: z.string().min(1).default('127.0.0.1'),
  API_BODY_LIMIT_BYTES: int(1024, 50 * 1024 * 1024).default(1024 * 1024),
  MESSAGE_CONTENT_MAX_CHARS: int(1, 1_000_000).default(32_000),
  REDACTION_DEFAULT_COUNTRY: z
    .string()
    .regex(/^[A-Z]{2}$/)
    .default('US'),
  DEDUPE_WINDOW_S: int(60, 10 * 365 * 86_400).default(30 * 86_400),
  WORKER_CONCURRENCY: int(1, 1000).default(32),
  WORKER_METRICS_PORT: int(0, 65_535).default(9464),
  WORKER_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  WORKER_LOCK_DURATION_MS: int(500, 600_000).default(30_000),
  WORKER_STALLED_INTERVAL_MS: int(500, 600_000).default(30_000),
  WORKER_MAX_ATTEMPTS: int(1, 100).default(10),
  WORKER_BACKOFF_BASE_MS: int(1, 600_000).default(1000),
  WORKER_BACKOFF_MAX_MS: int(1, 3_600_000).default(60_000),
  WORKER_DRAIN_SLICE_MS: int(10, 600_000).default(5000),
  WORKER_SWEEP_INTERVAL_MS: int(100, 600_000).default(5000),
  WORKER_BACKEND_TIMEOUT_MS: int(100, 600_000).default(10_000),
  WORKER_SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(25_000),
  WORKER_BREAKER_FAILURES: int(1, 10_000).default(5),
  WORKER_BREAKER_WINDOW_MS: int(100, 3_600_000).default(10_000),
  WORKER_BREAKER_COOLDOWN_MS: int(100, 3_600_000).default(5000),
  WORKER_AUTH_RETRY_MS: int(100, 3_600_000).default(30_000),
  WORKER_RATE_LIMIT_DEFAULT_MS: int(100, 3_600_000).default(5000),
  ZEP_API_KEY: z.string().min(1).optional(),
  ZEP_API_URL: z.url({ protocol: /^https?$/ }).default(ZEP_CLOUD_URL),
  ZEP_BATCH_SIZE: int(1, 30).default(30),
  ZEP_MESSAGE_MAX_CHARS: int(1, 1_000_000).default(2500),
  MEM0_API_KEY: z.string().min(1).optional(),
  MEM0_API_URL: z.url({ protocol: /^https?$/ }).default(MEM0_PLATFORM_URL),
  MEM0_API_STYLE: z.enum(['platform', 'oss', 'auto']).default('auto'),
  MEM0_BATCH_SIZE: int(1, 100).default(20),
  MEM0_EVENT_TIMEOUT_MS: int(100, 3_600_000).default(60_000),
  MEM0_INFER: z.enum(['true', 'false']).default('true'),
  MEM0_EMPTY_RESULT: z.enum(['dead', 'written']).default('dead'),
});

/** The memory backends memfleet writes to. */
export type MemoryBackendName = z.infer<typeof backendSchema>;
/** How memory is used: not at all, writes only, or writes and reads. */
export type MemoryMode = z.infer<typeof modeSchema>;

/** The parsed, validated environment of every memfleet process. */
export interface Config {
  nodeEnv: string;
  logLevel: string;
  /** Where Redis is: one server, or a Redis Cluster (`REDIS_URL`, `REDIS_CLUSTER_NODES`). */
  redis: RedisTarget;
  redisKeyPrefix: string;
  databaseUrl: string;
  memoryBackend: MemoryBackendName;
  memoryMode: MemoryMode;
  /** Tenant keys, as digests with their scopes (`MEMFLEET_API_KEYS`, `MEMFLEET_API_KEYS_FILE`). */
  apiKeys: ApiKeyEntry[];
  /** Hex SHA-256 of the admin key (`MEMFLEET_ADMIN_KEY`). */
  adminKeyDigest: string;
  /** Hex SHA-256 of the keys that open the dashboard read-only (`MEMFLEET_DASHBOARD_KEYS`). */
  dashboardKeyDigests: string[];
  /**
   * Per-tenant request rates, each a sustained rate per second and a burst on top (0 turns a
   * limit off): `enqueue` counts POST messages and DELETE users, `read` status and context reads.
   */
  rateLimits: {
    enqueue: { perSecond: number; burst: number };
    read: { perSecond: number; burst: number };
  };
  readCanaryPercent: number;
  readBudgetMs: number;
  api: {
    port: number;
    host: string;
    bodyLimitBytes: number;
    /** Processes serving the port (Node cluster); 1 runs the API in a single process. */
    processes: number;
  };
  reader: {
    port: number;
    /** Processes serving the port (Node cluster); 1 runs the reader in a single process. */
    processes: number;
    host: string;
    /** How long a backend context stays in the per-turn cache. */
    cacheTtlMs: number;
    /** Recent messages memfleet keeps per thread for the fallback answer. */
    fallbackMessages: number;
    /** Backend reads over budget or failed (fleet-wide, in the breaker window) that open the read breaker. */
    breakerFailures: number;
    /** How long the read breaker stays open before one read probes the backend. */
    breakerCooldownMs: number;
  };
  flags: {
    /** How often each process reloads the live flags from Redis. */
    refreshMs: number;
    /** How long reads stay downgraded to write_only after sustained auth failures. */
    downgradeMs: number;
    /** Consecutive 401/403 answers (fleet-wide) that downgrade reads. */
    downgradeAuthFailures: number;
  };
  messages: { contentMaxChars: number; redactionDefaultCountry: string; dedupeWindowS: number };
  worker: {
    concurrency: number;
    metricsPort: number;
    metricsHost: string;
    lockDurationMs: number;
    stalledIntervalMs: number;
    maxAttempts: number;
    backoffBaseMs: number;
    backoffMaxMs: number;
    drainSliceMs: number;
    sweepIntervalMs: number;
    backendTimeoutMs: number;
    shutdownTimeoutMs: number;
    /** Transient backend failures (fleet-wide, within `breakerWindowMs`) that open the breaker. */
    breakerFailures: number;
    breakerWindowMs: number;
    /** How long the breaker stays open before one probe is let through. */
    breakerCooldownMs: number;
    /** How long writes hold after the backend rejected the credentials, before a probe. */
    authRetryMs: number;
    /** Pause after a 429 that carries no usable Retry-After. */
    rateLimitDefaultMs: number;
  };
  /** Set when `MEMORY_BACKEND=zep`. */
  zep?: { apiKey: string; apiUrl: string; batchSize: number; messageMaxChars: number };
  /** Set when `MEMORY_BACKEND=mem0`. */
  mem0?: {
    apiKey: string;
    apiUrl: string;
    /** `auto`: the platform at mem0's URL, else detected on first use. */
    style: 'platform' | 'oss' | 'auto';
    batchSize: number;
    eventTimeoutMs: number;
    infer: boolean;
    onEmpty: 'dead' | 'written';
  };
}

/** Thrown by {@link loadConfig}; `issues` has one line per bad variable, each naming it. */
export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid configuration:\n  ${issues.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

function readKeyFile(path: string | undefined, issues: string[]) {
  if (path === undefined) return undefined;
  try {
    return { path, text: readFileSync(path, 'utf8') };
  } catch (err: unknown) {
    const code = (err as { code?: unknown }).code;
    issues.push(`MEMFLEET_API_KEYS_FILE: cannot read ${path} (${String(code ?? err)})`);
    return undefined;
  }
}

const truthy = (v: string | undefined): boolean | undefined =>
  v === undefined ? undefined : v === 'true' || v === '1';

function resolveMode(
  mode: MemoryMode | undefined,
  write: boolean | undefined,
  read: boolean | undefined,
  issues: string[],
): MemoryMode {
  const legacy: MemoryMode | undefined =
    write === undefined && read === undefined
      ? undefined
      : read === true
        ? 'read_write'
        : write === false
          ? 'off'
          : 'write_only';
  if (read === true && write === false) {
    issues.push('FLAG_ZEP_READ: reads cannot be on while FLAG_ZEP_WRITE is off');
  }
  if (mode !== undefined && legacy !== undefined && mode !== legacy) {
    issues.push(`MEMORY_MODE: ${mode} contradicts FLAG_ZEP_WRITE/FLAG_ZEP_READ (${legacy})`);
  }
  return mode ?? legacy ?? 'read_write';
}

/**
 * Parses and checks the environment once, at process start. Throws a {@link ConfigError} naming
 * every bad or contradictory variable (e.g. an unknown `MEMORY_BACKEND`, or `FLAG_ZEP_READ=true` with `FLAG_ZEP_WRITE=false`).
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ''),
  );
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`);
    // The Redis location spans two variables, so it is checked beside the schema.
    try {
      parseRedisTarget(cleaned.REDIS_URL, cleaned.REDIS_CLUSTER_NODES);
    } catch (err: unknown) {
      issues.unshift(err instanceof Error ? err.message : String(err));
    }
    if (cleaned.MEMFLEET_API_KEYS === undefined && cleaned.MEMFLEET_API_KEYS_FILE === undefined) {
      issues.push('MEMFLEET_API_KEYS: required (or MEMFLEET_API_KEYS_FILE)');
    }
    throw new ConfigError(issues);
  }
  const e = parsed.data;
  const issues: string[] = [];
  const apiKeys = parseApiKeys(
    { env: e.MEMFLEET_API_KEYS, file: readKeyFile(e.MEMFLEET_API_KEYS_FILE, issues) },
    issues,
  );
  let redis: RedisTarget = { kind: 'single', url: 'redis://127.0.0.1:6379' };
  try {
    redis = parseRedisTarget(e.REDIS_URL, e.REDIS_CLUSTER_NODES);
  } catch (err: unknown) {
    issues.push(err instanceof Error ? err.message : String(err));
  }
  const tenantDigests = new Set(apiKeys.map((k) => k.digest));
  const admin = parseKeySpec(e.MEMFLEET_ADMIN_KEY);
  const adminKeyDigest = 'digest' in admin ? admin.digest : '';
  if ('problem' in admin) issues.push(`MEMFLEET_ADMIN_KEY: ${admin.problem}`);
  else if (tenantDigests.has(admin.digest)) {
    issues.push('MEMFLEET_ADMIN_KEY: must differ from every tenant key');
  }
  const dashboardKeyDigests: string[] = [];
  (e.MEMFLEET_DASHBOARD_KEYS ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '')
    .forEach((spec, i) => {
      const key = parseKeySpec(spec);
      if ('problem' in key) {
        issues.push(`MEMFLEET_DASHBOARD_KEYS: key ${i + 1}: ${key.problem}`);
      } else if (key.digest === adminKeyDigest || tenantDigests.has(key.digest)) {
        issues.push(
          `MEMFLEET_DASHBOARD_KEYS: key ${i + 1} must differ from the admin and tenant keys`,
        );
      } else {
        dashboardKeyDigests.push(key.digest);
      }
    });
  if (e.WORKER_BACKEND_TIMEOUT_MS >= e.WORKER_LOCK_DURATION_MS) {
    issues.push('WORKER_BACKEND_TIMEOUT_MS: must be below WORKER_LOCK_DURATION_MS');
  }
  if (e.WORKER_BACKOFF_MAX_MS < e.WORKER_BACKOFF_BASE_MS) {
    issues.push('WORKER_BACKOFF_MAX_MS: must be at least WORKER_BACKOFF_BASE_MS');
  }
  if (e.MEMORY_BACKEND === 'zep' && e.ZEP_API_KEY === undefined) {
    issues.push('ZEP_API_KEY: required when MEMORY_BACKEND=zep');
  }
  if (e.MEMORY_BACKEND === 'mem0' && e.MEM0_API_KEY === undefined) {
    issues.push('MEM0_API_KEY: required when MEMORY_BACKEND=mem0');
  }
  const memoryMode = resolveMode(
    e.MEMORY_MODE,
    truthy(e.FLAG_ZEP_WRITE),
    truthy(e.FLAG_ZEP_READ),
    issues,
  );
  if (issues.length > 0) throw new ConfigError(issues);

  return {
    nodeEnv: e.NODE_ENV,
    logLevel: e.LOG_LEVEL,
    redis,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    databaseUrl: e.DATABASE_URL,
    memoryBackend: e.MEMORY_BACKEND,
    memoryMode,
    apiKeys,
    adminKeyDigest,
    dashboardKeyDigests,
    rateLimits: {
      enqueue: { perSecond: e.RATE_LIMIT_ENQUEUE_PER_S, burst: e.RATE_LIMIT_ENQUEUE_BURST },
      read: { perSecond: e.RATE_LIMIT_READ_PER_S, burst: e.RATE_LIMIT_READ_BURST },
    },
    readCanaryPercent: e.READ_CANARY_PERCENT,
    readBudgetMs: e.READ_BUDGET_MS,
    api: {
      port: e.API_PORT,
      host: e.API_HOST,
      bodyLimitBytes: e.API_BODY_LIMIT_BYTES,
      processes: e.API_PROCESSES,
    },
    reader: {
      port: e.READER_PORT,
      processes: e.READER_PROCESSES,
      host: e.READER_HOST,
      cacheTtlMs: e.READ_CACHE_TTL_MS,
      fallbackMessages: e.READ_FALLBACK_MESSAGES,
      breakerFailures: e.READ_BREAKER_FAILURES,
      breakerCooldownMs: e.READ_BREAKER_COOLDOWN_MS,
    },
    flags: {
      refreshMs: e.FLAGS_REFRESH_MS,
      downgradeMs: e.FLAGS_DOWNGRADE_MS,
      downgradeAuthFailures: e.FLAGS_DOWNGRADE_AUTH_FAILURES,
    },
    messages: {
      contentMaxChars: e.MESSAGE_CONTENT_MAX_CHARS,
      redactionDefaultCountry: e.REDACTION_DEFAULT_COUNTRY,
      dedupeWindowS: e.DEDUPE_WINDOW_S,
    },
    worker: {
      concurrency: e.WORKER_CONCURRENCY,
      metricsPort: e.WORKER_METRICS_PORT,
      metricsHost: e.WORKER_METRICS_HOST,
      lockDurationMs: e.WORKER_LOCK_DURATION_MS,
      stalledIntervalMs: e.WORKER_STALLED_INTERVAL_MS,
      maxAttempts: e.WORKER_MAX_ATTEMPTS,
      backoffBaseMs: e.WORKER_BACKOFF_BASE_MS,
      backoffMaxMs: e.WORKER_BACKOFF_MAX_MS,
      drainSliceMs: e.WORKER_DRAIN_SLICE_MS,
      sweepIntervalMs: e.WORKER_SWEEP_INTERVAL_MS,
      backendTimeoutMs: e.WORKER_BACKEND_TIMEOUT_MS,
      shutdownTimeoutMs: e.WORKER_SHUTDOWN_TIMEOUT_MS,
      breakerFailures: e.WORKER_BREAKER_FAILURES,
      breakerWindowMs: e.WORKER_BREAKER_WINDOW_MS,
      breakerCooldownMs: e.WORKER_BREAKER_COOLDOWN_MS,
      authRetryMs: e.WORKER_AUTH_RETRY_MS,
      rateLimitDefaultMs: e.WORKER_RATE_LIMIT_DEFAULT_MS,
    },
    ...(e.MEMORY_BACKEND === 'zep' && e.ZEP_API_KEY !== undefined
      ? {
          zep: {
            apiKey: e.ZEP_API_KEY,
            apiUrl: e.ZEP_API_URL,
            batchSize: e.ZEP_BATCH_SIZE,
            messageMaxChars: e.ZEP_MESSAGE_MAX_CHARS,
          },
        }
      : {}),
    ...(e.MEMORY_BACKEND === 'mem0' && e.MEM0_API_KEY !== undefined
      ? {
          mem0: {
            apiKey: e.MEM0_API_KEY,
            apiUrl: e.MEM0_API_URL,
            style: e.MEM0_API_STYLE,
            batchSize: e.MEM0_BATCH_SIZE,
            eventTimeoutMs: e.MEM0_EVENT_TIMEOUT_MS,
            infer: e.MEM0_INFER === 'true',
            onEmpty: e.MEM0_EMPTY_RESULT,
          },
        }
      : {}),
  };
}

/**
 * {@link loadConfig} for a process entry point: on a bad environment, prints every issue to stderr
 * and exits with status 2 instead of starting half-configured.
 */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err: unknown) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(2);
  }
}
