import type pg from 'pg';

/**
 * Rows Postgres has read from `table` so far, through its indexes and by sequential scans, as its
 * statistics count them, including what this session read up to its last statement. `session`
 * must be the one connection the statements to count ran on (a pool of one): a backend reports
 * its counts only when it goes idle, and this makes it report them at once.
 */
export async function tuplesRead(session: pg.Pool, table: string): Promise<number> {
  await session.query('SELECT pg_stat_force_next_flush()');
  await session.query('SELECT pg_stat_clear_snapshot()');
  const res = await session.query<{ n: string | null }>(
    `SELECT (SELECT sum(idx_tup_read) FROM pg_stat_user_indexes WHERE relname = $1)
          + (SELECT seq_tup_read FROM pg_stat_user_tables WHERE relname = $1) AS n`,
    [table],
  );
  return Number(res.rows[0]?.n ?? 0);
}
