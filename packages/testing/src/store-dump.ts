import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Cluster, type Redis } from 'ioredis';
import { withPgClient } from './with-pg-client.ts';

// The test command scans what the integration tests left in the stores for personal data the
// API should have redacted (log-scan.ts). Tests delete their Redis keys, drop their databases and
// close their emulators afterwards, so the shared teardown code first writes what it is about to
// delete under MEMFLEET_TEST_LOG_DIR, one JSON line per key, row or stored item, in `*.dump` files.

/** The directory store dumps go to, or undefined when the run keeps none. */
export function storeDumpDir(): string | undefined {
  const dir = process.env.MEMFLEET_TEST_LOG_DIR;
  return dir === undefined || dir === '' ? undefined : dir;
}

/** Appends `items` as JSON lines to `<dir>/<name>.dump` when dumps are kept. */
export async function writeStoreDump(name: string, items: readonly unknown[]): Promise<void> {
  const dir = storeDumpDir();
  if (dir === undefined || items.length === 0) return;
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${name.replace(/[^\w.-]/g, '_')}.dump`);
  await appendFile(file, items.map((item) => `${JSON.stringify(item)}\n`).join(''));
}

/** Every key under `prefix` (on each master of a cluster) with its value, as dump items. */
export async function redisPrefixItems(redis: Redis | Cluster, prefix: string): Promise<unknown[]> {
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  const items: unknown[] = [];
  for (const node of nodes) {
    for (const key of await node.keys(`${prefix}*`)) {
      const type = await node.type(key);
      let value: unknown = null;
      if (type === 'string') value = await node.get(key);
      else if (type === 'hash') value = await node.hgetall(key);
      else if (type === 'list') value = await node.lrange(key, 0, -1);
      else if (type === 'set') value = await node.smembers(key);
      else if (type === 'zset') value = await node.zrange(key, 0, -1);
      // Entries without their ids: an id (milliseconds-sequence) can read as a card number.
      else if (type === 'stream') value = (await node.xrange(key, '-', '+')).map(([, f]) => f);
      items.push({ key, type, value });
    }
  }
  return items;
}

/** Writes the keys under `prefix` to `redis-<prefix>.dump` when dumps are kept. */
export async function dumpRedisPrefix(redis: Redis | Cluster, prefix: string): Promise<void> {
  if (storeDumpDir() === undefined) return;
  await writeStoreDump(`redis-${prefix}`, await redisPrefixItems(redis, prefix));
}

/** Writes every row of every table of the database's public schema to `pg-<name>.dump`. */
export async function dumpDatabase(url: string, name: string): Promise<void> {
  if (storeDumpDir() === undefined) return;
  const items = await withPgClient(url, async (c) => {
    const tables = await c.query<{ t: string }>(
      `select tablename as t from pg_tables where schemaname = 'public' order by tablename`,
    );
    const rows: unknown[] = [];
    for (const { t } of tables.rows) {
      const res = await c.query<{ row: unknown }>(
        `select row_to_json(x) as row from public."${t.replace(/"/g, '""')}" x`,
      );
      for (const r of res.rows) rows.push({ table: t, row: r.row });
    }
    return rows;
  });
  await writeStoreDump(`pg-${name}`, items);
}
