import type { Ledger } from '@memfleet/db/ledger';
import type { Outbox } from '@memfleet/outbox/outbox';

/** Answer of `GET /v1/messages/{client_message_id}`. */
export interface MessageStatusView {
  client_message_id: string;
  thread_id: string;
  status: 'queued' | 'written' | 'dead';
  attempts: number;
  written_at?: string;
  error?: string;
}

/**
 * Looks a message up for one tenant: the outbox's live record first, then the ledger (the permanent
 * record once the Redis status has expired).
 */
export function createStatusLookup(deps: { outbox: Outbox; ledger: Ledger }) {
  return async function messageStatus(
    tenant: string,
    clientMessageId: string,
  ): Promise<MessageStatusView | undefined> {
    const live = await deps.outbox.status(tenant, clientMessageId);
    if (live !== undefined) {
      return {
        client_message_id: clientMessageId,
        thread_id: live.threadId,
        status: live.status,
        attempts: live.attempts,
        ...(live.writtenAt !== undefined ? { written_at: live.writtenAt.toISOString() } : {}),
        ...(live.error !== undefined ? { error: live.error } : {}),
      };
    }
    const row = await deps.ledger.getStatus(tenant, clientMessageId);
    if (row === undefined) return undefined;
    return {
      client_message_id: clientMessageId,
      thread_id: row.threadId,
      status: row.status,
      attempts: row.attempts,
      ...(row.writtenAt !== null ? { written_at: row.writtenAt.toISOString() } : {}),
      ...(row.error !== null ? { error: row.error } : {}),
    };
  };
}
