import { toError } from '@memfleet/errors/to-error';
import { migrate } from './migrate.ts';

// Entry point of `pnpm migrate [up|down]`: the start command runs it before the apps start.
const url = process.env.DATABASE_URL;
const direction = process.argv[2] === 'down' ? 'down' : 'up';
if (url === undefined || url === '') {
  console.error('DATABASE_URL: required to run migrations');
  process.exit(2);
}
try {
  const ran = await migrate(url, { direction });
  console.log(
    ran.length === 0
      ? 'migrations: database is current'
      : `migrations ${direction}: ${ran.join(', ')}`,
  );
} catch (err: unknown) {
  console.error(`migrations failed: ${toError(err).message}`);
  process.exit(1);
}
