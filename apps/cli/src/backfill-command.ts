// `memfleet backfill`: writes past messages to the backend the fleet now writes to. See backfill.ts.
import { access, constants } from 'node:fs/promises';
import { resolve } from 'node:path';
import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { connectCliRedis, type RedisClient } from '@memfleet/redis/connect-redis';
import { checkRedisLocation, redisEnvFields } from '@memfleet/redis/redis-env';
import { parseRedisTarget } from '@memfleet/redis/redis-target';
import pg from 'pg';
import { z } from 'zod';
import { createLedger } from '@memfleet/db/ledger';
import { toError } from '@memfleet/errors/to-error';
import { createMessageIntake } from '@memfleet/intake/accept-messages';
import { createDrainQueue } from '@memfleet/jobs/thread-drain';
import { createOutbox } from '@memfleet/outbox/outbox';
import type { RedactOptions } from '@memfleet/redaction/redact';
import {
  BACKFILL_TARGETS,
  defaultCursorName,
  parseCursorName,
  parseRate,
  parseSince,
  parseTenant,
  type BackfillTarget,
} from './backfill-input.ts';
import { BackfillUsageError, createBackfill, type BackfillReport } from './backfill.ts';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

// What the command needs of the fleet's environment, spelled and defaulted as packages/config does.
const envSchema = z
  .object({
    ...redisEnvFields,
    DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }),
    REDACTION_DEFAULT_COUNTRY: z
      .string()
      .regex(/^[A-Z]{2}$/)
      .default('US'),
    MESSAGE_CONTENT_MAX_CHARS: int(1, 1_000_000).default(32_000),
    DEDUPE_WINDOW_S: int(60, 10 * 365 * 86_400).default(30 * 86_400),
    READ_FALLBACK_MESSAGES: int(0, 100).default(4),
    WORKER_MAX_ATTEMPTS: int(1, 100).default(10),
  })
  .superRefine(checkRedisLocation);
type Env = z.infer<typeof envSchema>;

/** Problems (bad lines, refused messages) printed one by one; the rest are only counted. */
const MAX_PROBLEMS_SHOWN = 100;

interface BackfillFlags {
  since?: string;
  to: BackfillTarget;
  file?: string;
  tenant?: string[];
  rate: string;
  name?: string;
  restart?: boolean;
  dryRun?: boolean;
}

/** Commander argument parser: a thrown message becomes commander's "invalid argument" (exit 2). */
const checked =
  <T>(parse: (raw: string) => T) =>
  (raw: string): T => {
    try {
      return parse(raw);
    } catch (err: unknown) {
      throw new InvalidArgumentError(toError(err).message);
    }
  };

/** Registers `memfleet backfill` on the program. */
export function registerBackfillCommand(program: Command): void {
  program
    .command('backfill')
    .description(
      'Re-enqueue past messages for the backend the fleet now writes to: from the ledger (written ' +
        'messages with their bodies) or a JSONL file, in thread order, rate-limited, resumable. ' +
        'Needs REDIS_URL and DATABASE_URL.',
    )
    .showHelpAfterError('(memfleet backfill --help for usage)')
    .option(
      '--since <when>',
      'messages accepted since: 30d, 12h, 90m or an ISO date (required with the ledger; with ' +
        '--file, keeps lines whose created_at is not older)',
    )
    .addOption(
      new Option(
        '--to <backend>',
        'the backend the fleet now writes to (skips messages already there)',
      )
        .choices(BACKFILL_TARGETS)
        .makeOptionMandatory(),
    )
    .option(
      '--file <path>',
      'read a JSONL file (one { tenant, thread_id, user_id, client_message_id, role, content, ' +
        'name?, created_at, metadata? } per line) instead of the ledger',
    )
    .option(
      '--tenant <tenant>',
      'only this tenant (repeatable; default every tenant)',
      (raw: string, prev: string[] | undefined) => [...(prev ?? []), checked(parseTenant)(raw)],
    )
    .option('--rate <rate>', 'messages re-enqueued per second or minute: 200/s, 600/m', '200/s')
    .option('--name <name>', 'name of the stored cursor (default: a hash of the selection)')
    .option('--restart', 'forget the stored cursor and start from the beginning')
    .option('--dry-run', 'say what would be re-enqueued, change nothing')
    .action(async (flags: BackfillFlags, command: Command) => {
      const usage = (message: string): never =>
        command.error(message, { exitCode: 2, code: 'memfleet.usage' });
      const nowMs = Date.now();
      let rate;
      let since: Date | undefined;
      let name: string;
      try {
        rate = parseRate(flags.rate);
        since = flags.since === undefined ? undefined : parseSince(flags.since, nowMs);
        if (since === undefined && flags.file === undefined) {
          throw new Error('--since: required when backfilling from the ledger (e.g. --since 30d)');
        }
        name =
          flags.name === undefined
            ? defaultCursorName({
                source: flags.file === undefined ? 'ledger' : `file:${resolve(flags.file)}`,
                since: flags.since,
                tenants: flags.tenant,
                to: flags.to,
              })
            : parseCursorName(flags.name);
        if (flags.file !== undefined) {
          await access(flags.file, constants.R_OK).catch((err: unknown) => {
            throw new Error(`--file: cannot read ${flags.file ?? ''}: ${toError(err).message}`);
          });
        }
      } catch (err: unknown) {
        return usage(toError(err).message);
      }
      const env = envSchema.safeParse(
        Object.fromEntries(
          Object.entries(process.env).filter(([, v]) => v !== undefined && v !== ''),
        ),
      );
      if (!env.success) {
        return usage(
          env.error.issues
            .map((i) => {
              const name = i.path.join('.');
              const given = process.env[name] !== undefined && process.env[name] !== '';
              return `${name}: ${given ? i.message : 'required by memfleet backfill'}`;
            })
            .join('\n'),
        );
      }

      const report = await withConnections(env.data, async (conn) => {
        const outbox = createOutbox(conn.redis, {
          prefix: env.data.REDIS_KEY_PREFIX,
          dedupeWindowS: env.data.DEDUPE_WINDOW_S,
          recentMessages: env.data.READ_FALLBACK_MESSAGES,
        });
        const defaultCountry = env.data.REDACTION_DEFAULT_COUNTRY as NonNullable<
          RedactOptions['defaultCountry']
        >;
        const backfill = createBackfill({
          redis: conn.redis,
          prefix: env.data.REDIS_KEY_PREFIX,
          outbox,
          ledger: createLedger(conn.pool),
          queue: conn.queue,
          accept: createMessageIntake({ outbox, queue: conn.queue, defaultCountry }),
          defaultCountry,
          contentMaxChars: env.data.MESSAGE_CONTENT_MAX_CHARS,
        });
        const bar = new cliProgress.SingleBar(
          {
            format: `backfill |{bar}| {value}/{total} ${flags.file === undefined ? 'messages' : 'lines'}`,
            stream: process.stderr,
          },
          cliProgress.Presets.shades_classic,
        );
        let total = 0;
        let done = 0;
        let shown = 0;
        try {
          return await backfill({
            source:
              flags.file === undefined
                ? { kind: 'ledger', since: since ?? new Date(nowMs) }
                : { kind: 'file', path: flags.file, since },
            tenants: flags.tenant,
            to: flags.to,
            rate,
            name,
            restart: flags.restart === true,
            dryRun: flags.dryRun === true,
            onTotal: (n) => {
              total = n;
              bar.start(total, 0);
            },
            onProgress: (n) => {
              done += n;
              bar.increment(n);
            },
            onProblem: (text) => {
              shown++;
              if (shown > MAX_PROBLEMS_SHOWN) return;
              bar.stop();
              console.error(
                shown < MAX_PROBLEMS_SHOWN
                  ? text
                  : `${text}\n(further problems are counted, not shown)`,
              );
              bar.start(total, done);
            },
          });
        } catch (err: unknown) {
          if (err instanceof BackfillUsageError) return usage(err.message);
          throw err;
        } finally {
          bar.stop();
        }
      });
      printReport(report, flags);
    });
}

function printReport(report: BackfillReport, flags: BackfillFlags): void {
  const dry = flags.dryRun === true;
  if (report.resumedFrom !== undefined) {
    console.log(
      `continued the cursor ${report.cursorKey} ${report.resumedFrom} (--restart to start over)`,
    );
  }
  const cols = [
    'requeued',
    'new',
    'onTarget',
    'pending',
    'noBody',
    'failed',
  ] as const satisfies readonly (keyof BackfillReport['tenants'][number])[];
  const total = (k: (typeof cols)[number] | 'threads') =>
    report.tenants.reduce((n, s) => n + s[k], 0);
  const table = new Table({
    head: [
      'tenant',
      'threads',
      dry ? 'would re-enqueue' : 're-enqueued',
      dry ? 'would add (new)' : 'new',
      'already on target',
      'pending (skipped)',
      'no body',
      'failed',
    ],
    style: { head: [], border: [] },
  });
  table.push(...report.tenants.map((s) => [s.tenant, s.threads, ...cols.map((k) => s[k])]), [
    'total',
    total('threads'),
    ...cols.map((k) => total(k)),
  ]);
  console.log(table.toString());
  if (flags.file !== undefined) {
    console.log(
      `${report.rejectedLines} line(s) rejected, ${report.skippedLines} skipped (blank or outside --tenant/--since)`,
    );
  }
  if (dry) console.log('dry run: nothing was changed');
  const failures: string[] = [];
  if (report.rejectedLines > 0) failures.push(`${report.rejectedLines} line(s) rejected`);
  if (total('failed') > 0) failures.push(`${total('failed')} message(s) refused`);
  if (total('noBody') > 0) {
    failures.push(
      `${total('noBody')} message(s) have no body in the ledger (written before it kept bodies) and cannot be written again`,
    );
  }
  if (report.earlierProblems > 0) {
    failures.push(`${report.earlierProblems} problem(s) in earlier runs of this cursor`);
  }
  if (failures.length > 0) throw new Error(`backfill incomplete: ${failures.join('; ')}`);
}

/** Opens Redis (failing fast), Postgres and the drain queue; closes them whatever happens. */
async function withConnections<T>(
  env: Env,
  work: (conn: {
    redis: RedisClient;
    pool: pg.Pool;
    queue: ReturnType<typeof createDrainQueue>;
  }) => Promise<T>,
): Promise<T> {
  const redis = await connectCliRedis(parseRedisTarget(env.REDIS_URL, env.REDIS_CLUSTER_NODES));
  const pool = new pg.Pool({
    connectionString: env.DATABASE_URL,
    max: 2,
    connectionTimeoutMillis: 10_000,
  });
  pool.on('error', () => undefined);
  const queue = createDrainQueue({
    connection: redis,
    prefix: env.REDIS_KEY_PREFIX,
    maxMessageAttempts: env.WORKER_MAX_ATTEMPTS,
  });
  try {
    try {
      await pool.query('SELECT body FROM ledger LIMIT 0');
    } catch (err: unknown) {
      const e = toError(err);
      throw new Error(
        /column "body" does not exist|relation "ledger" does not exist/.test(e.message)
          ? 'the ledger at DATABASE_URL is not migrated: run pnpm migrate'
          : `cannot reach Postgres at DATABASE_URL: ${e.message}`,
      );
    }
    return await work({ redis, pool, queue });
  } finally {
    await queue.close();
    await pool.end();
    redis.disconnect();
  }
}
