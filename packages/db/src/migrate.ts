import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';

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
  const ran = await runner({
    databaseUrl,
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
