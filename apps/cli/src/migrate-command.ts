// `memfleet migrate mem0-to-zep`: mem0 memories into the fleet through the API's intake, so every
// message is validated, redacted, deduplicated and written in order by the workers.
import { ZepClient } from '@getzep/zep-cloud';
import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import { Command, InvalidArgumentError, Option } from 'commander';
import { connectCliRedis, type RedisClient } from '@memfleet/redis/connect-redis';
import { checkRedisLocation, redisEnvFields } from '@memfleet/redis/redis-env';
import { parseRedisTarget } from '@memfleet/redis/redis-target';
import { z } from 'zod';
import { TENANT_RE, ZEP_CLOUD_URL } from '@memfleet/config/load-config';
import { toError } from '@memfleet/errors/to-error';
import { createMessageIntake } from '@memfleet/intake/accept-messages';
import { createDrainQueue } from '@memfleet/jobs/thread-drain';
import { createOutbox, type Outbox } from '@memfleet/outbox/outbox';
import type { RedactOptions } from '@memfleet/redaction/redact';
import {
  planMigration,
  type MigrationPlan,
  type PlannedThread,
  type RejectedRecord,
} from './mem0-export.ts';
import {
  compareWithZep,
  cursorKey,
  finishedThreads,
  MigrateUsageError,
  readExportFile,
  readFromMem0,
  runMigration,
  waitUntilFinal,
  type Difference,
  type MigrationSource,
  type RunResult,
} from './migrate.ts';

/** mem0's platform API. */
const MEM0_PLATFORM_URL = 'https://api.mem0.ai';
/** Rows of a long list (rejected records, differences) printed before "… and N more". */
const MAX_ROWS = 50;

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

// The fleet's own settings (same names and defaults as packages/config), and the two services.
const envSchema = z
  .object({
    ...redisEnvFields,
    MESSAGE_CONTENT_MAX_CHARS: int(1, 1_000_000).default(32_000),
    REDACTION_DEFAULT_COUNTRY: z
      .string()
      .regex(/^[A-Z]{2}$/, 'must be a two-letter region code such as US')
      .default('US'),
    DEDUPE_WINDOW_S: int(60, 10 * 365 * 86_400).default(30 * 86_400),
    READ_FALLBACK_MESSAGES: int(0, 100).default(4),
    WORKER_MAX_ATTEMPTS: int(1, 100).default(10),
    MEM0_API_KEY: z.string().min(1).optional(),
    MEM0_API_URL: z.url({ protocol: /^https?$/ }).default(MEM0_PLATFORM_URL),
    ZEP_API_KEY: z.string().min(1).optional(),
    ZEP_API_URL: z.url({ protocol: /^https?$/ }).default(ZEP_CLOUD_URL),
  })
  .superRefine(checkRedisLocation);
type MigrateEnv = z.infer<typeof envSchema>;

interface MigrateOptions {
  tenant: string;
  file?: string;
  fromApi?: boolean;
  dryRun?: boolean;
  validate?: boolean;
  validateOnly?: boolean;
  wait: number;
  restart?: boolean;
}

/** Registers `migrate mem0-to-zep` on the CLI's program. */
export function registerMigrateCommand(program: Command): void {
  const migrate = program
    .command('migrate')
    .description('Bring the memories of another memory store into the fleet.');

  migrate
    .command('mem0-to-zep')
    .description(
      'Migrate mem0 memories (an export file or the mem0 platform API) into Zep through the ' +
        "fleet's intake: users stay users, runs become threads, each memory one message. " +
        'Resumable: a rerun skips the threads a previous run finished.',
    )
    .addOption(new Option('--tenant <tenant>', 'tenant to migrate into').makeOptionMandatory())
    .addOption(
      new Option(
        '--file <path>',
        "a mem0 export: getAll's JSON (a list, or { results })",
      ).conflicts('fromApi'),
    )
    .option(
      '--from-api',
      "read every user's memories from the mem0 API (MEM0_API_URL, MEM0_API_KEY)",
    )
    .addOption(
      new Option('--dry-run', 'read and map everything, print the plan, write nothing').conflicts([
        'validate',
        'validateOnly',
      ]),
    )
    .option('--validate', 'afterwards, wait for the writes and compare every thread with Zep')
    .option('--validate-only', 'only compare (ZEP_API_URL, ZEP_API_KEY); migrate nothing')
    .option(
      '--wait <seconds>',
      'how long validation waits for queued messages to be written',
      seconds,
      600,
    )
    .option('--restart', 'ignore what previous runs of this source did and send everything again')
    .action(async (opts: MigrateOptions, cmd: Command) => {
      try {
        await migrateMem0ToZep(opts, checkUsage(opts));
      } catch (err: unknown) {
        if (err instanceof MigrateUsageError) cmd.error(err.message, { exitCode: 2 });
        throw err;
      }
    });
}

function seconds(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be whole seconds (≥ 0)');
  return n;
}

function checkUsage(opts: MigrateOptions): MigrateEnv {
  if ((opts.file === undefined) === (opts.fromApi !== true)) {
    throw new MigrateUsageError('choose exactly one source: --file <path> or --from-api');
  }
  if (!TENANT_RE.test(opts.tenant)) {
    throw new MigrateUsageError(
      '--tenant: must be lowercase letters, digits, _ or - (at most 63), as in MEMFLEET_API_KEYS',
    );
  }
  const parsed = envSchema.safeParse(
    Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== undefined && v !== '')),
  );
  if (!parsed.success) {
    throw new MigrateUsageError(
      parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n'),
    );
  }
  const env = parsed.data;
  if (opts.fromApi === true && env.MEM0_API_KEY === undefined) {
    throw new MigrateUsageError('MEM0_API_KEY: required with --from-api');
  }
  if ((opts.validate === true || opts.validateOnly === true) && env.ZEP_API_KEY === undefined) {
    throw new MigrateUsageError('ZEP_API_KEY: required with --validate and --validate-only');
  }
  return env;
}

async function readSource(opts: MigrateOptions, env: MigrateEnv): Promise<MigrationSource> {
  if (opts.file !== undefined) return readExportFile(opts.file);
  // mem0ai reads this when it loads: no usage reports to mem0 unless the operator asks for them.
  process.env.MEM0_TELEMETRY ??= 'false';
  const { MemoryClient } = await import('mem0ai');
  const client = new MemoryClient({ apiKey: env.MEM0_API_KEY ?? '', host: env.MEM0_API_URL });
  try {
    const source = await readFromMem0(client);
    console.error(`read ${source.records.length} memories from mem0`);
    return source;
  } catch (err: unknown) {
    throw new Error(`reading mem0 at ${env.MEM0_API_URL} failed: ${toError(err).message}`);
  }
}

/** A progress bar on stderr; when stderr is not a terminal, a line at every tenth of the way. */
function progress(label: string, total: number, unit: string) {
  let value = 0;
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} |{bar}| {value}/{total} ${unit}`, stream: process.stderr },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0);
    return {
      set: (v: number) => bar.update((value = v)),
      add: (n: number) => bar.update((value += n)),
      stop: () => bar.stop(),
    };
  }
  let shown = -1;
  const show = () => {
    const tenth = total === 0 ? 10 : Math.floor((value * 10) / total);
    if (tenth > shown) {
      shown = tenth;
      console.error(`${label}: ${value}/${total} ${unit}`);
    }
  };
  return {
    set: (v: number) => {
      value = v;
      show();
    },
    add: (n: number) => {
      value += n;
      show();
    },
    stop: () => undefined,
  };
}

function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({ head, style: { head: [], border: [], compact: true } });
  t.push(...rows);
  return t.toString();
}

/** Rows of a long list, the rest summed up in a last row. */
function capped<T>(items: readonly T[], row: (item: T) => (string | number)[], width: number) {
  const rows = items.slice(0, MAX_ROWS).map(row);
  if (items.length > MAX_ROWS) {
    rows.push([`… and ${items.length - MAX_ROWS} more`, ...Array<string>(width - 1).fill('')]);
  }
  return rows;
}

/** Messages a list of planned threads sends, export duplicates included. */
const messagesIn = (threads: readonly PlannedThread[]): number =>
  threads.reduce((n, t) => n + t.messages.length, 0);

async function migrateMem0ToZep(opts: MigrateOptions, env: MigrateEnv): Promise<void> {
  const source = await readSource(opts, env);
  const plan = planMigration(source.records, env.MESSAGE_CONTENT_MAX_CHARS);
  const problems: string[] = [];
  if (plan.rejected.length > 0) {
    console.log(
      table(
        ['record', 'memory id', 'rejected because'],
        capped(plan.rejected, (r: RejectedRecord) => [r.record, r.memoryId ?? '', r.reason], 3),
      ),
    );
    problems.push(`${plan.rejected.length} record(s) rejected`);
  }
  const rows: [string, number][] = [
    ['records', source.records.length],
    ['users', plan.users],
    ['threads', plan.threads.length],
    ['messages', plan.messages],
    ['duplicates in the export', plan.duplicates],
    ['rejected', plan.rejected.length],
  ];
  const redis = await connectCliRedis(parseRedisTarget(env.REDIS_URL, env.REDIS_CLUSTER_NODES));
  const cursor = cursorKey(env.REDIS_KEY_PREFIX, opts.tenant, source.sha256);
  try {
    if (opts.dryRun === true) {
      const done = opts.restart === true ? new Set() : await finishedThreads(redis, cursor);
      const doneThreads = plan.threads.filter((t) => done.has(t.threadId));
      rows.push(
        ['threads done by earlier runs', doneThreads.length],
        ['messages to send', messagesIn(plan.threads) - messagesIn(doneThreads)],
      );
      console.log(table(['plan', 'count'], rows));
      console.log(`dry run: nothing was written (cursor ${cursor})`);
    } else {
      const outbox = createOutbox(redis, {
        prefix: env.REDIS_KEY_PREFIX,
        dedupeWindowS: env.DEDUPE_WINDOW_S,
        recentMessages: env.READ_FALLBACK_MESSAGES,
      });
      if (opts.validateOnly !== true) {
        const run = await send(plan, { redis, outbox, env, tenant: opts.tenant, cursor, opts });
        rows.push(
          ['threads done by earlier runs', run.skippedThreads],
          ['queued now', run.queued],
          ['already in the fleet', run.alreadyInFleet],
          ['refused threads', run.refused.length],
        );
        if (run.refused.length > 0) {
          console.log(
            table(
              ['thread_id', 'user_id', 'messages', 'refused because'],
              capped(run.refused, (r) => [r.threadId, r.userId, r.messages, r.reason], 4),
            ),
          );
          problems.push(...run.refused.map((r) => r.reason));
        }
      }
      if (opts.validate === true || opts.validateOnly === true) {
        const { differences, pending } = await validate(plan, outbox, env, opts);
        rows.push(['still queued', pending], ['threads differing in Zep', differences.length]);
        if (pending > 0) problems.push(`${pending} message(s) still queued after ${opts.wait} s`);
        if (differences.length > 0) problems.push(`${differences.length} thread(s) differ in Zep`);
      }
      console.log(table(['migration', 'count'], rows));
      if (opts.validateOnly !== true) console.log(`cursor ${cursor}`);
    }
  } finally {
    redis.disconnect();
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
}

interface SendDeps {
  redis: RedisClient;
  outbox: Outbox;
  env: MigrateEnv;
  tenant: string;
  cursor: string;
  opts: MigrateOptions;
}

/** Hands the plan to the intake. Only a real run opens the drain queue (it writes its meta key). */
async function send(plan: MigrationPlan, deps: SendDeps): Promise<RunResult> {
  const queue = createDrainQueue({
    connection: deps.redis,
    prefix: deps.env.REDIS_KEY_PREFIX,
    maxMessageAttempts: deps.env.WORKER_MAX_ATTEMPTS,
  });
  const accept = createMessageIntake({
    outbox: deps.outbox,
    queue,
    defaultCountry: deps.env.REDACTION_DEFAULT_COUNTRY as NonNullable<
      RedactOptions['defaultCountry']
    >,
  });
  const bar = progress('migrate', messagesIn(plan.threads), 'messages');
  try {
    return await runMigration(plan, {
      redis: deps.redis,
      accept,
      tenant: deps.tenant,
      cursor: deps.cursor,
      restart: deps.opts.restart === true,
      onMessages: (n) => bar.add(n),
    });
  } finally {
    bar.stop();
    await queue.close();
  }
}

async function validate(
  plan: MigrationPlan,
  outbox: Outbox,
  env: MigrateEnv,
  opts: MigrateOptions,
): Promise<{ differences: Difference[]; pending: number }> {
  const waitBar = progress('wait', plan.messages, 'messages final');
  const final = await waitUntilFinal(outbox, opts.tenant, plan, {
    timeoutMs: opts.wait * 1000,
    onFinal: (n) => waitBar.set(Math.min(n, plan.messages)),
  });
  waitBar.stop();
  const zep = new ZepClient({ apiKey: env.ZEP_API_KEY ?? '', baseUrl: env.ZEP_API_URL });
  const readBar = progress('validate', plan.threads.length, 'threads read from Zep');
  let differences: Difference[];
  try {
    differences = await compareWithZep(plan, zep, {
      tenant: opts.tenant,
      dead: final.dead,
      onThread: () => readBar.add(1),
    });
  } catch (err: unknown) {
    throw new Error(`reading Zep at ${env.ZEP_API_URL} failed: ${toError(err).message}`);
  } finally {
    readBar.stop();
  }
  console.log(
    table(
      ['user_id', 'thread_id', 'expected', 'in Zep', 'missing', 'extra', 'dead', 'note'],
      capped(
        differences,
        (d) => [d.userId, d.threadId, d.expected, d.inZep, d.missing, d.extra, d.dead, d.note],
        8,
      ),
    ),
  );
  console.log(
    `validation: ${differences.length} difference(s) over ${plan.threads.length} threads`,
  );
  return { differences, pending: final.pending };
}
