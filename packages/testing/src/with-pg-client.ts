import pg from 'pg';

/**
 * Runs `fn` with a fresh connection to `url` and always closes it afterwards, so that callers
 * (fixtures, readiness probes) never keep a connection open between tests. `connectTimeoutMs`
 * defaults to 5000.
 */
export async function withPgClient<T>(
  url: string,
  fn: (client: pg.Client) => Promise<T>,
  connectTimeoutMs = 5000,
): Promise<T> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: connectTimeoutMs,
  });
  // An 'error' event with no listener (e.g. the server terminating us) would crash the runner.
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
