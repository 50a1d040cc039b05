// `pnpm memfleet …`: the operator's tools, one entry point. Run with the fleet's REDIS_URL (or
// REDIS_CLUSTER_NODES) and REDIS_KEY_PREFIX. Exit codes: 0 done, 1 the work failed (or was incomplete), 2 bad usage.
import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import { Command, CommanderError, Option } from 'commander';
import { toError } from '@memfleet/errors/to-error';
import { createDrainQueue } from '@memfleet/jobs/thread-drain';
import { createEraseQueue, requestErase } from '@memfleet/jobs/user-erase';
import { createOutbox } from '@memfleet/outbox/outbox';
import { connectCliRedis, type RedisClient } from '@memfleet/redis/connect-redis';
import { readRedisEnv, RedisEnvError } from '@memfleet/redis/redis-env';
import { registerBackfillCommand } from './backfill-command.ts';
import { registerDoctorCommand } from './doctor-command.ts';
import { registerFlagsCommand } from './flags-command.ts';
import { createDeadLetterTools, type DeadLetterSelection } from './dead-letters.ts';
import { registerMigrateCommand } from './migrate-command.ts';

class UsageError extends Error {}

/** Opens what a command needs and closes it afterwards, whatever happens. */
async function withFleet<T>(
  work: (fleet: {
    tools: ReturnType<typeof createDeadLetterTools>;
    redis: RedisClient;
    prefix: string;
  }) => Promise<T>,
): Promise<T> {
  let env: ReturnType<typeof readRedisEnv>;
  try {
    env = readRedisEnv(process.env);
  } catch (err: unknown) {
    throw err instanceof RedisEnvError ? new UsageError(err.message) : err;
  }
  const { prefix } = env;
  const redis = await connectCliRedis(env.target);
  const queue = createDrainQueue({ connection: redis, prefix, maxMessageAttempts: 10 });
  try {
    const outbox = createOutbox(redis, { prefix });
    return await work({ tools: createDeadLetterTools({ outbox, queue }), redis, prefix });
  } finally {
    await queue.close();
    redis.disconnect();
  }
}

function selection(ids: string[], opts: { all?: boolean; thread?: string }): DeadLetterSelection {
  const given = [opts.all === true, opts.thread !== undefined, ids.length > 0].filter(Boolean);
  if (given.length !== 1) {
    throw new UsageError('choose exactly one of --all, --thread <thread_id> or client message ids');
  }
  if (opts.all === true) return { all: true };
  if (opts.thread !== undefined) return { threadId: opts.thread };
  return { ids };
}

const tenantOption = () =>
  new Option('--tenant <tenant>', 'tenant the dead letters belong to').makeOptionMandatory();

function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({ head, style: { head: [], border: [] } });
  t.push(...rows);
  return t.toString();
}

const program = new Command('memfleet')
  .description('Operator tools for a memfleet fleet (REDIS_URL, REDIS_KEY_PREFIX from the env).')
  .exitOverride()
  .showHelpAfterError();

const dlq = program
  .command('dlq')
  .description('Dead-lettered messages: list, show, replay, purge.');

dlq
  .command('list')
  .description('List dead letters of a tenant, oldest first.')
  .addOption(tenantOption())
  .option('--limit <n>', 'how many', (v) => positiveInt(v, '--limit'), 50)
  .option('--json', 'print JSON instead of a table')
  .action(async (opts: { tenant: string; limit: number; json?: boolean }) => {
    await withFleet(async ({ tools }) => {
      const letters = await tools.list(opts.tenant, 0, opts.limit);
      if (opts.json === true) {
        console.log(JSON.stringify(letters));
        return;
      }
      console.log(
        table(
          ['client_message_id', 'thread_id', 'seq', 'attempts', 'dead_at', 'error'],
          letters.map((d) => [
            d.clientMessageId,
            d.threadId,
            d.seq,
            d.attempts,
            d.deadAt.toISOString(),
            d.error.slice(0, 80),
          ]),
        ),
      );
      console.log(`${letters.length} dead letter(s)`);
    });
  });

dlq
  .command('show')
  .description('Show one dead letter.')
  .argument('<client_message_id>')
  .addOption(tenantOption())
  .action(async (id: string, opts: { tenant: string }) => {
    await withFleet(async ({ tools }) => {
      const [letter] = await tools.select(opts.tenant, { ids: [id] });
      if (letter === undefined) throw new Error(`${id}: not a dead letter of ${opts.tenant}`);
      console.log(JSON.stringify(letter, null, 2));
    });
  });

dlq
  .command('replay')
  .description('Put dead letters back in their threads, in accept order, and drain them.')
  .argument('[client_message_ids...]')
  .addOption(tenantOption())
  .option('--all', 'every dead letter of the tenant')
  .option('--thread <thread_id>', "one thread's dead letters")
  .option('--dry-run', 'say what would be replayed, change nothing')
  .action(
    async (
      ids: string[],
      opts: { tenant: string; all?: boolean; thread?: string; dryRun?: boolean },
    ) => {
      const sel = selection(ids, opts);
      await withFleet(async ({ tools }) => {
        const bar = new cliProgress.SingleBar(
          { format: 'replay |{bar}| {value}/{total} threads', stream: process.stderr },
          cliProgress.Presets.shades_classic,
        );
        const letters = await tools.select(opts.tenant, sel);
        bar.start(new Set(letters.map((d) => d.threadId)).size, 0);
        const summaries = await tools.replay(opts.tenant, sel, {
          dryRun: opts.dryRun === true,
          onThread: () => bar.increment(),
        });
        bar.stop();
        const total = (k: 'replayed' | 'notDead' | 'bodyGone') =>
          summaries.reduce((n, s) => n + s[k], 0);
        console.log(
          table(
            [
              'thread_id',
              opts.dryRun === true ? 'would replay' : 'replayed',
              'not dead',
              'expired',
            ],
            [
              ...summaries.map((s) => [s.threadId, s.replayed, s.notDead, s.bodyGone]),
              ['total', total('replayed'), total('notDead'), total('bodyGone')],
            ],
          ),
        );
        if (opts.dryRun === true) console.log('dry run: nothing was changed');
        if (total('bodyGone') > 0) {
          throw new Error(`${total('bodyGone')} dead letter(s) expired and cannot be replayed`);
        }
      });
    },
  );

dlq
  .command('purge')
  .description('Forget dead letters for good.')
  .argument('[client_message_ids...]')
  .addOption(tenantOption())
  .option('--all', 'every dead letter of the tenant')
  .option('--thread <thread_id>', "one thread's dead letters")
  .option('--dry-run', 'say what would be purged, change nothing')
  .action(
    async (
      ids: string[],
      opts: { tenant: string; all?: boolean; thread?: string; dryRun?: boolean },
    ) => {
      const sel = selection(ids, opts);
      await withFleet(async ({ tools }) => {
        const n = await tools.purge(opts.tenant, sel, { dryRun: opts.dryRun === true });
        console.log(
          table([opts.dryRun === true ? 'would purge' : 'purged'], [[n]]) +
            (opts.dryRun === true ? '\ndry run: nothing was changed' : ''),
        );
      });
    },
  );

program
  .command('users')
  .description('Users: erase.')
  .command('erase')
  .description('Erase a user everywhere (as DELETE /v1/users/{user_id}); a worker carries it out.')
  .argument('<user_id>')
  .addOption(tenantOption())
  .action(async (userId: string, opts: { tenant: string }) => {
    await withFleet(async ({ redis, prefix }) => {
      const queue = createEraseQueue({ connection: redis, prefix });
      try {
        await requestErase(queue, opts.tenant, userId);
      } finally {
        await queue.close();
      }
      console.log(`erasure of ${userId} (${opts.tenant}) queued`);
    });
  });

registerBackfillCommand(program);
registerFlagsCommand(program);
registerDoctorCommand(program);
registerMigrateCommand(program);

function positiveInt(raw: string, name: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name}: must be a positive integer`);
  return n;
}

try {
  await program.parseAsync(process.argv);
} catch (err: unknown) {
  if (err instanceof CommanderError) {
    // Help and version are "errors" to commander; they exit 0.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if (err instanceof UsageError) {
    console.error(err.message);
    process.exitCode = 2;
  } else {
    console.error(`memfleet: ${toError(err).message}`);
    process.exitCode = 1;
  }
}
// Every connection is closed by now; a failed connection attempt may leave a timer behind.
process.exit();
