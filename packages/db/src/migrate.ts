import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import pg from 'pg';

/** Folder of the SQL migrations (ledger and the postgres memory store). */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));
const MIGRATIONS_TABLE = 'pgmigrations';

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** `up` applies pending migrations, `down` reverts the last one. Default `up`. */
  direction?: 'up' | 'down';
  /** Only report what would run. Default false. */
  dryRun?: boolean;
  /** Where progress lines go. Default: nowhere. */
  log?: (line: string) => void;
}

/**
 * Applies (or reverts) migrations with node-pg-migrate under its advisory lock, so several processes
 * starting at once do not race. Returns the names of the migrations that ran.
 */
export async function migrate(
  databaseUrl: string,
  options: MigrateOptions = {},
): Promise<string[]> {
  const log = options.log ?? (() => undefined);
  // Our own client, ended and awaited here: node-pg-migrate does not wait for the end of one it
  // opens itself, so a database dropped right after could still reach that socket.
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await runMigrations(client, options, log);
  } finally {
    await client.end();
  }
}

async function runMigrations(
  client: pg.Client,
  options: MigrateOptions,
  log: (line: string) => void,
): Promise<string[]> {
  const ran = await runner({
    dbClient: client,
    dir: MIGRATIONS_DIR,
    migrationsTable: MIGRATIONS_TABLE,
    direction: options.direction ?? 'up',
    count: options.direction === 'down' ? 1 : Infinity,
    dryRun: options.dryRun ?? false,
    checkOrder: true,
    log,
    logger: { debug: () => undefined, info: log, warn: log, error: log },
  });
  return ran.map((m) => m.name);
}

/** Names of migrations not yet applied to the database (empty when it is current). */
export async function pendingMigrations(databaseUrl: string): Promise<string[]> {
  return migrate(databaseUrl, { dryRun: true });
}
