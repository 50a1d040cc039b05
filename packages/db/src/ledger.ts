import type { Pool } from 'pg';

/** A message reaching a final state, as recorded in the ledger. */
export interface LedgerEntry {
  tenant: string;
  clientMessageId: string;
  threadId: string;
  userId: string;
  seq: number;
  attempts: number;
  acceptedAt: Date;
}

/** The ledger's view of one message. */
export interface LedgerStatus {
  clientMessageId: string;
  threadId: string;
  userId: string;
  status: 'written' | 'dead';
  attempts: number;
  error: string | null;
  writtenAt: Date | null;
}

/** The permanent record of written and dead-lettered messages, in Postgres. */
export interface Ledger {
  /** Records messages as written; a later write of a dead message turns it written. */
  recordWritten(entries: readonly LedgerEntry[], backend: string): Promise<void>;
  /** Records messages as dead with a reason; never overwrites a written one. */
  recordDead(entries: readonly LedgerEntry[], backend: string, reason: string): Promise<void>;
  /** Which of these client message ids of a tenant are already written. */
  findWritten(tenant: string, clientMessageIds: readonly string[]): Promise<Set<string>>;
  /** The ledger's record of one message, or undefined. */
  getStatus(tenant: string, clientMessageId: string): Promise<LedgerStatus | undefined>;
  /** Every message of a user of a tenant: client message id and thread. */
  userMessages(
    tenant: string,
    userId: string,
  ): Promise<{ clientMessageId: string; threadId: string }[]>;
  /** Deletes every record of a user of a tenant; returns how many. */
  eraseUser(tenant: string, userId: string): Promise<number>;
}

interface StatusRow {
  client_message_id: string;
  thread_id: string;
  user_id: string;
  status: 'written' | 'dead';
  attempts: number;
  error: string | null;
  written_at: Date | null;
}

const UPSERT = `
  INSERT INTO ledger (tenant, client_message_id, thread_id, user_id, seq, status, attempts, error,
                      backend, accepted_at, written_at)
  SELECT $1, e.cmid, e.thread, e.usr, e.seq, $2, e.attempts, $3, $4, e.accepted,
         CASE WHEN $2 = 'written' THEN now() END
  FROM unnest($5::text[], $6::text[], $7::text[], $8::bigint[], $9::int[], $10::timestamptz[])
       AS e(cmid, thread, usr, seq, attempts, accepted)
  ON CONFLICT (tenant, client_message_id) DO UPDATE
    SET status = EXCLUDED.status, attempts = EXCLUDED.attempts, error = EXCLUDED.error,
        backend = EXCLUDED.backend, written_at = EXCLUDED.written_at, updated_at = now()
    WHERE ledger.status <> 'written'`;

/** Creates the ledger over a pg pool (the caller owns and closes the pool). */
export function createLedger(pool: Pool): Ledger {
  async function upsert(
    entries: readonly LedgerEntry[],
    status: 'written' | 'dead',
    backend: string,
    reason: string | null,
  ): Promise<void> {
    // One statement per tenant keeps the write a single round trip for a batch (a batch is always
    // one thread, hence one tenant).
    const byTenant = new Map<string, LedgerEntry[]>();
    for (const e of entries) {
      const list = byTenant.get(e.tenant) ?? [];
      list.push(e);
      byTenant.set(e.tenant, list);
    }
    for (const [tenant, list] of byTenant) {
      await pool.query(UPSERT, [
        tenant,
        status,
        reason,
        backend,
        list.map((e) => e.clientMessageId),
        list.map((e) => e.threadId),
        list.map((e) => e.userId),
        list.map((e) => e.seq),
        list.map((e) => e.attempts),
        list.map((e) => e.acceptedAt),
      ]);
    }
  }

  return {
    recordWritten: (entries, backend) => upsert(entries, 'written', backend, null),
    recordDead: (entries, backend, reason) => upsert(entries, 'dead', backend, reason),
    async findWritten(tenant, clientMessageIds) {
      if (clientMessageIds.length === 0) return new Set();
      const res = await pool.query<{ client_message_id: string }>(
        `SELECT client_message_id FROM ledger
         WHERE tenant = $1 AND client_message_id = ANY($2::text[]) AND status = 'written'`,
        [tenant, clientMessageIds],
      );
      return new Set(res.rows.map((r) => r.client_message_id));
    },
    async userMessages(tenant, userId) {
      const res = await pool.query<{ client_message_id: string; thread_id: string }>(
        `SELECT client_message_id, thread_id FROM ledger WHERE tenant = $1 AND user_id = $2`,
        [tenant, userId],
      );
      return res.rows.map((r) => ({ clientMessageId: r.client_message_id, threadId: r.thread_id }));
    },
    async eraseUser(tenant, userId) {
      const res = await pool.query(`DELETE FROM ledger WHERE tenant = $1 AND user_id = $2`, [
        tenant,
        userId,
      ]);
      return res.rowCount ?? 0;
    },
    async getStatus(tenant, clientMessageId) {
      const res = await pool.query<StatusRow>(
        `SELECT client_message_id, thread_id, user_id, status, attempts, error, written_at
         FROM ledger WHERE tenant = $1 AND client_message_id = $2`,
        [tenant, clientMessageId],
      );
      const row = res.rows[0];
      if (row === undefined) return undefined;
      return {
        clientMessageId: row.client_message_id,
        threadId: row.thread_id,
        userId: row.user_id,
        status: row.status,
        attempts: row.attempts,
        error: row.error,
        writtenAt: row.written_at,
      };
    },
  };
}
