import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { MEMORY_MODES, TENANT_RE, type MemoryMode } from '@memfleet/config/load-config';
import { toError } from '@memfleet/errors/to-error';
import { connectCliRedis, type RedisClient } from '@memfleet/redis/connect-redis';
import { checkRedisLocation, redisEnvFields } from '@memfleet/redis/redis-env';
import { parseRedisTarget } from '@memfleet/redis/redis-target';
import { createFlags, type FlagPatch } from './flags.ts';
import { toFlagsView } from './flags-view.ts';

// `memfleet flags …` (also `pnpm flags …`): shows and changes the live flags of the fleet sharing
// REDIS_URL and REDIS_KEY_PREFIX. Every running process picks a change up within FLAGS_REFRESH_MS.

const USAGE = `usage:
  pnpm flags [get]                              show the flags in force (JSON)
  pnpm flags set [--tenant T] mode=M canary=P   override the mode (${MEMORY_MODES.join(' | ')}) and/or read canary (0..100)
  pnpm flags unset [--tenant T] [mode] [canary] remove overrides (all of a tenant's with --tenant T alone)
  pnpm flags clear-downgrade                    end a read downgrade now`;

class UsageError extends Error {}

const KEYS = { mode: 'mode', canary: 'canary', canary_percent: 'canary' } as const;
type Key = (typeof KEYS)[keyof typeof KEYS];

function keyOf(arg: string, name: string): Key {
  const key = (KEYS as Record<string, Key | undefined>)[name];
  if (key === undefined) throw new UsageError(`${arg}: unknown setting (mode, canary)`);
  return key;
}

function parseValue(arg: string, key: Key, raw: string): MemoryMode | number {
  if (key === 'mode') {
    const mode = MEMORY_MODES.find((m) => m === raw);
    if (mode === undefined) throw new UsageError(`${arg}: mode must be ${MEMORY_MODES.join(', ')}`);
    return mode;
  }
  const n = /^\d{1,3}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 0 && n <= 100)) throw new UsageError(`${arg}: canary must be an integer 0..100`);
  return n;
}

/** The patch a command line asks for; `{}` shows the flags. */
function parseArgs(argv: readonly string[]): FlagPatch {
  const [command = 'show', ...rest] = argv;
  let tenant: string | undefined;
  const words: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] ?? '';
    if (arg === '--tenant' || arg.startsWith('--tenant=')) {
      const name = arg === '--tenant' ? rest[++i] : arg.slice('--tenant='.length);
      if (name === undefined || !TENANT_RE.test(name)) {
        throw new UsageError(`--tenant: needs a tenant name (lowercase, as in MEMFLEET_API_KEYS)`);
      }
      tenant = name;
    } else if (arg.startsWith('-')) {
      throw new UsageError(`${arg}: unknown option`);
    } else {
      words.push(arg);
    }
  }
  const noMore = () => {
    if (tenant !== undefined) throw new UsageError(`--tenant: not taken by ${command}`);
    if (words[0] !== undefined) throw new UsageError(`${words[0]}: unexpected argument`);
  };

  switch (command) {
    case 'show':
    case 'get':
      noMore();
      return {};
    case 'clear-downgrade':
      noMore();
      return { downgrade: null };
    case 'set':
    case 'unset': {
      const change: { mode?: MemoryMode | null; canaryPercent?: number | null } = {};
      for (const word of words) {
        const eq = word.indexOf('=');
        if (command === 'set' && eq < 0) throw new UsageError(`${word}: expected setting=value`);
        if (command === 'unset' && eq >= 0) throw new UsageError(`${word}: unset takes no value`);
        const key = keyOf(word, eq < 0 ? word : word.slice(0, eq));
        const value = command === 'set' ? parseValue(word, key, word.slice(eq + 1)) : null;
        if (key === 'mode') change.mode = value as MemoryMode | null;
        else change.canaryPercent = value as number | null;
      }
      if (tenant === undefined) {
        if (words.length === 0) throw new UsageError(`${command}: name at least one setting`);
        return change;
      }
      if (command === 'set' && words.length === 0) {
        throw new UsageError(`set: name at least one setting`);
      }
      return { tenants: { [tenant]: words.length === 0 ? null : change } };
    }
    default:
      throw new UsageError(`${command}: unknown command`);
  }
}

const envSchema = z
  .object({
    ...redisEnvFields,
    MEMORY_MODE: z.enum(MEMORY_MODES).optional(),
    FLAG_ZEP_WRITE: z.enum(['true', 'false', '1', '0']).optional(),
    FLAG_ZEP_READ: z.enum(['true', 'false', '1', '0']).optional(),
    READ_CANARY_PERCENT: z.coerce.number().int().min(0).max(100).default(100),
  })
  .superRefine(checkRedisLocation);

/** The env default the fleet runs with, as far as this shell's environment tells. */
function defaultMode(e: z.infer<typeof envSchema>): MemoryMode {
  if (e.MEMORY_MODE !== undefined) return e.MEMORY_MODE;
  const on = (v: string | undefined) => v === 'true' || v === '1';
  if (on(e.FLAG_ZEP_READ)) return 'read_write';
  if (e.FLAG_ZEP_WRITE !== undefined) return on(e.FLAG_ZEP_WRITE) ? 'write_only' : 'off';
  return 'read_write';
}

/**
 * Runs one flags command line (`argv` without the program name) against the fleet the
 * environment names; prints the flags in force and returns the exit code: 0 done, 1 Redis
 * failed, 2 bad usage or environment.
 */
export async function runFlagsCli(
  argv: readonly string[],
  processEnv: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let patch: FlagPatch;
  try {
    if (argv[0] === 'help' || argv.includes('--help') || argv.includes('-h')) {
      console.log(USAGE);
      return 0;
    }
    patch = parseArgs(argv);
  } catch (err: unknown) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`${err.message}\n${USAGE}`);
    return 2;
  }

  const env = envSchema.safeParse(
    Object.fromEntries(Object.entries(processEnv).filter(([, v]) => v !== undefined && v !== '')),
  );
  if (!env.success) {
    console.error(env.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n'));
    return 2;
  }

  let redis: RedisClient;
  try {
    redis = await connectCliRedis(
      parseRedisTarget(env.data.REDIS_URL, env.data.REDIS_CLUSTER_NODES),
    );
  } catch (err: unknown) {
    console.error(`flags: ${toError(err).message}`);
    return 1;
  }
  const flags = createFlags(redis, {
    prefix: env.data.REDIS_KEY_PREFIX,
    defaults: { mode: defaultMode(env.data), canaryPercent: env.data.READ_CANARY_PERCENT },
    // Only the processes that run use these; a CLI run makes one change and leaves.
    refreshMs: 1000,
    downgradeMs: 600_000,
    downgradeAuthFailures: 3,
  });
  try {
    // An empty patch only loads; unlike refresh(), update() fails when Redis cannot be reached.
    const snapshot = await flags.update(patch);
    console.log(JSON.stringify(toFlagsView(snapshot), null, 2));
    await redis.quit();
    return 0;
  } catch (err: unknown) {
    console.error(`flags: Redis: ${toError(err).message}`);
    redis.disconnect();
    return 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runFlagsCli(process.argv.slice(2));
}
