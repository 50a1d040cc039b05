import DataLoader from 'dataloader';
import type { Pool } from 'pg';
import { chunksOf, groupCommit, MAX_STATEMENT_CHARS } from '@memfleet/db/group-commit';
import { wellFormed } from '@memfleet/db/json-param';
import { toError } from '@memfleet/errors/to-error';
import { BackendError } from './backend-error.ts';
import { BoundedSet } from './bounded-set.ts';
import type {
  CallOptions,
  ContextMessage,
  MemoryBackend,
  MemoryMessage,
  MessageRole,
  ThreadRef,
} from './memory-backend.ts';

/** Options of {@link createPostgresBackend}. */
export interface PostgresBackendOptions {
  /** Most messages per insert. Default 100. */
  maxBatchSize?: number;
  /** Messages in the context block. Default 20. */
  contextMessages?: number;
  /** Users and threads this process remembers as existing (each). Default 10 000. */
  ensuredCacheSize?: number;
}

interface MessageRow {
  client_message_id: string;
  role: MessageRole;
  content: string;
  created_at: Date;
}

// SQLSTATE classes that say the request itself is bad (data exceptions, integrity violations,
// syntax or access rule violations): retrying the same rows cannot succeed.
const PERMANENT_CLASSES = new Set(['22', '23', '42']);
const FOREIGN_KEY_VIOLATION = '23503';

function classify(err: unknown): BackendError {
  if (err instanceof BackendError) return err;
  const e = toError(err);
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && PERMANENT_CLASSES.has(code.slice(0, 2))) {
    return new BackendError('permanent', `postgres rejected the write: ${e.message}`, {
      cause: e,
    });
  }
  if (code === '28P01' || code === '28000') {
    return new BackendError('auth', `postgres rejected the credentials: ${e.message}`, {
      cause: e,
    });
  }
  return new BackendError('transient', `postgres call failed: ${e.message}`, { cause: e });
}

function checkAborted(options: CallOptions | undefined): void {
  if (options?.signal?.aborted === true) {
    throw new BackendError('transient', 'postgres call aborted');
  }
}

async function run<T>(options: CallOptions | undefined, fn: () => Promise<T>): Promise<T> {
  checkAborted(options);
  try {
    return await fn();
  } catch (err: unknown) {
    throw classify(err);
  }
}

const toContext = (r: MessageRow): ContextMessage => ({
  clientMessageId: r.client_message_id,
  role: r.role,
  content: r.content,
  createdAt: r.created_at.toISOString(),
});

/**
 * The self-hosted memory store: users, threads and messages tables in the fleet's own Postgres.
 * Inserts are idempotent per (tenant, client_message_id), so a retried batch never stores a message
 * twice. Statement timeouts come from the pool's configuration.
 */
export function createPostgresBackend(
  pool: Pool,
  options: PostgresBackendOptions = {},
): MemoryBackend {
  const contextMessages = options.contextMessages ?? 20;
  // Users and threads known to exist, so a drain does not re-insert them on every batch. Keyed
  // `<tenant>\n<user>` and `<tenant>\n<user>\n<thread>`, so erasing a user forgets their threads.
  // A thread erased by another process is caught by the messages' foreign key (below).
  const ensuredUsers = new BoundedSet(options.ensuredCacheSize ?? 10_000);
  const ensuredThreads = new BoundedSet(options.ensuredCacheSize ?? 10_000);
  const userKey = (u: { tenant: string; userId: string }): string => `${u.tenant}\n${u.userId}`;
  const threadKey = (t: ThreadRef): string => `${userKey(t)}\n${t.threadId}`;

  async function recentMessages(
    thread: ThreadRef,
    limit: number,
    callOptions?: CallOptions,
  ): Promise<ContextMessage[]> {
    return run(callOptions, async () => {
      const res = await pool.query<MessageRow>(
        `SELECT client_message_id, role, content, created_at FROM (
           SELECT id, client_message_id, role, content, created_at FROM memory_messages
           WHERE tenant = $1 AND thread_id = $2 ORDER BY id DESC LIMIT $3
         ) recent ORDER BY id`,
        [thread.tenant, thread.threadId, limit],
      );
      return res.rows.map(toContext);
    });
  }

  /** One `addMessages` call: a thread and its batch, in order, each metadata as JSON text. */
  interface InsertCall {
    thread: ThreadRef;
    messages: readonly MemoryMessage[];
    metadata: readonly string[];
  }

  /** Roughly the characters a call adds to the statement. */
  const callChars = (call: InsertCall): number =>
    call.messages.reduce(
      (n, m, i) =>
        n + m.content.length + (m.name?.length ?? 0) + (call.metadata[i]?.length ?? 0) + 100,
      0,
    );

  function insertRows(calls: readonly InsertCall[]): Promise<unknown> {
    // One JSON parameter for all rows: one native JSON.stringify instead of pg's escaping of
    // eight array parameters element by element. `i` keeps each batch's order.
    let n = 0;
    const rows = JSON.stringify(
      calls.flatMap((c) =>
        c.messages.map((m, i) => ({
          i: n++,
          tenant: wellFormed(c.thread.tenant),
          thread: wellFormed(c.thread.threadId),
          cmid: wellFormed(m.clientMessageId),
          role: m.role,
          name: m.name === undefined ? null : wellFormed(m.name),
          content: wellFormed(m.content),
          metadata: c.metadata[i] ?? '{}',
          created_at: m.createdAt,
        })),
      ),
    );
    return pool.query({
      name: 'memfleet-memory-insert',
      text: `INSERT INTO memory_messages
         (tenant, thread_id, client_message_id, role, name, content, metadata, created_at)
       SELECT m.tenant, m.thread, m.cmid, m.role, m.name, m.content, m.metadata::jsonb,
              m.created_at
       FROM json_to_recordset($1::json)
            AS m(i int, tenant text, thread text, cmid text, role text, name text, content text,
                 metadata text, created_at timestamptz)
       ORDER BY m.i
       ON CONFLICT (tenant, client_message_id) DO NOTHING`,
      values: [rows],
    });
  }

  // The batches of concurrent drains share one statement (group commit, as the ledger's writes):
  // one statement at a time at Postgres instead of one per drain, so the inserts neither pay a
  // round trip each nor contend for the same index pages and thread rows. A group larger than
  // MAX_STATEMENT_CHARS goes in several statements. A shared statement that fails is sent again
  // one batch at a time, so a batch Postgres refuses fails its own drain only. ORDER BY
  // ordinality makes ids (the store's order) follow each batch's order.
  const insertGroup = groupCommit(1);
  const inserts = new DataLoader<InsertCall, true>(
    (calls) =>
      insertGroup.run(async () => {
        const results = new Map<InsertCall, true | Error>();
        for (const chunk of chunksOf(calls, callChars, MAX_STATEMENT_CHARS)) {
          try {
            await insertRows(chunk);
          } catch (err: unknown) {
            if (chunk.length === 1) {
              results.set(chunk[0] as InsertCall, toError(err));
              continue;
            }
            for (const call of chunk) {
              await insertRows([call]).catch((own: unknown) => {
                results.set(call, toError(own));
              });
            }
          }
        }
        return calls.map((call) => results.get(call) ?? true);
      }),
    { cache: false, maxBatchSize: 50, batchScheduleFn: insertGroup.schedule },
  );

  return {
    name: 'postgres',
    maxBatchSize: options.maxBatchSize ?? 100,

    isEnsured: (thread) =>
      ensuredUsers.has(userKey(thread)) && ensuredThreads.has(threadKey(thread)),

    ensureUser: (user, callOptions) =>
      run(callOptions, async () => {
        if (ensuredUsers.has(userKey(user))) return;
        await pool.query(
          `INSERT INTO memory_users (tenant, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
          [user.tenant, user.userId],
        );
        ensuredUsers.add(userKey(user));
      }),

    ensureThread: (thread, callOptions) =>
      run(callOptions, async () => {
        if (ensuredThreads.has(threadKey(thread))) return;
        await pool.query(
          `INSERT INTO memory_threads (tenant, thread_id, user_id) VALUES ($1, $2, $3)
           ON CONFLICT DO NOTHING`,
          [thread.tenant, thread.threadId, thread.userId],
        );
        const res = await pool.query<{ user_id: string }>(
          `SELECT user_id FROM memory_threads WHERE tenant = $1 AND thread_id = $2`,
          [thread.tenant, thread.threadId],
        );
        const owner = res.rows[0]?.user_id;
        if (owner !== thread.userId) {
          throw new BackendError('permanent', `thread ${thread.threadId} belongs to another user`);
        }
        ensuredThreads.add(threadKey(thread));
      }),

    addMessages: (thread, messages: readonly MemoryMessage[], callOptions) =>
      run(callOptions, async () => {
        if (messages.length === 0) return;
        const metadata = messages.map((m) => JSON.stringify(m.metadata));
        await inserts.load({ thread, messages, metadata }).catch((err: unknown) => {
          if ((err as { code?: unknown }).code !== FOREIGN_KEY_VIOLATION) throw err;
          // The thread (or its user) was erased behind the cache: create it again on the retry.
          ensuredUsers.delete(userKey(thread));
          ensuredThreads.delete(threadKey(thread));
          throw new BackendError('transient', `thread ${thread.threadId} does not exist`, {
            cause: toError(err),
          });
        });
      }),

    findWritten: (thread, clientMessageIds, callOptions) =>
      run(callOptions, async () => {
        // A lookup by the unique (tenant, client_message_id) key per id, the thread compared
        // here: `WHERE thread_id = $2 AND client_message_id = ANY($3)` lets Postgres read the
        // whole thread through the (tenant, thread_id, id) index instead when the table's
        // statistics are old. The lateral subquery it may not flatten (`OFFSET 0`), unnamed
        // (planned for each call with the table as it is), leaves it only the key.
        const res = await pool.query<{ client_message_id: string; thread_id: string }>({
          text: `SELECT m.client_message_id, m.thread_id
                 FROM unnest($2::text[]) AS i(id)
                 CROSS JOIN LATERAL (
                   SELECT client_message_id, thread_id FROM memory_messages
                   WHERE tenant = $1 AND client_message_id = i.id
                   OFFSET 0) m`,
          values: [thread.tenant, clientMessageIds],
        });
        return new Set(
          res.rows.filter((r) => r.thread_id === thread.threadId).map((r) => r.client_message_id),
        );
      }),

    recentMessages,

    async getContext(thread, callOptions) {
      const messages = await recentMessages(thread, contextMessages, callOptions);
      const wanted = callOptions?.messages ?? contextMessages;
      return {
        context: messages.map((m) => `${m.role}: ${m.content}`).join('\n'),
        messages: wanted <= 0 ? [] : messages.slice(-wanted),
      };
    },

    eraseUser: (user, callOptions) =>
      run(callOptions, async () => {
        ensuredUsers.delete(userKey(user));
        ensuredThreads.deleteWhere((key) => key.startsWith(`${userKey(user)}\n`));
        await pool.query(`DELETE FROM memory_users WHERE tenant = $1 AND user_id = $2`, [
          user.tenant,
          user.userId,
        ]);
      }),
  };
}
