import { idSchema } from '@memfleet/http/ids';
import {
  describeIssues,
  messageSchema,
  type MessagesRequest,
} from '@memfleet/intake/message-request';

/** A message as the intake takes it. */
export type IntakeMessage = MessagesRequest['messages'][number];

/** A memfleet thread made of mem0 memories, in the order its messages are sent. */
export interface PlannedThread {
  threadId: string;
  userId: string;
  /** Every message to send, in created_at then export order, duplicates of the export included. */
  messages: IntakeMessage[];
  /** Distinct messages (what the thread should hold once migrated). */
  unique: number;
}

/** A record of the export that cannot be migrated. */
export interface RejectedRecord {
  /** 1-based position in the export. */
  record: number;
  memoryId: string | undefined;
  reason: string;
}

/** What a migration would do with an export. */
export interface MigrationPlan {
  threads: PlannedThread[];
  /** Distinct users with at least one thread. */
  users: number;
  /** Distinct messages to migrate. */
  messages: number;
  /** Records repeating an earlier one (same id, same content): sent, and deduped by the outbox. */
  duplicates: number;
  rejected: RejectedRecord[];
}

/** The export as a whole is unusable (not JSON, not a list of memories). */
export class ExportFormatError extends Error {
  override name = 'ExportFormatError';
}

/** Roles a memfleet message may have. */
const ROLES: readonly string[] = ['user', 'assistant', 'system', 'tool'];
/** Prefix of every client message id and thread id the migration makes. */
export const MEM0_ID_PREFIX = 'mem0-';

/**
 * The memory records of a mem0 export: the JSON `getAll` returns, either a list of memories or an
 * object with `results: [...]`.
 */
export function exportRecords(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (isObject(value) && Array.isArray(value.results)) return value.results;
  throw new ExportFormatError(
    'must be a JSON array of mem0 memories or an object with "results": [...]',
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The first present (not undefined, not null) of these keys. */
function field(record: Record<string, unknown>, ...keys: string[]): unknown {
  for (const key of keys) {
    const value = record[key];
    if (value !== undefined && value !== null) return value;
  }
  return undefined;
}

/** JSON with object keys sorted, so equal records compare equal whatever their key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    isObject(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

// Field names of the intake's message, as the export spells them.
const EXPORT_FIELD: Record<string, string> = { content: 'memory', client_message_id: 'id' };

interface Mapped {
  record: number;
  memoryId: string;
  userId: string;
  threadId: string;
  /** From `run_id`/`session_id`, for messages; undefined when the thread is the user's own. */
  runId: string | undefined;
  createdAtMs: number;
  message: IntakeMessage;
}

/** A distinct memory and the later records that repeat it. */
interface Entry {
  mapped: Mapped;
  /** Canonical JSON of what it maps to, to tell a repeat from a conflict. */
  key: string;
  duplicates: Mapped[];
}

type MapOutcome = { ok: true; mapped: Mapped } | { ok: false; memoryId?: string; reason: string };

/**
 * Maps one mem0 memory to a memfleet message. Keys are mem0's snake_case (`user_id`, `run_id` or
 * `session_id`, `created_at`); the camelCase the `mem0ai` client returns is accepted too.
 */
function mapRecord(raw: unknown, record: number, contentMaxChars: number): MapOutcome {
  if (!isObject(raw)) return { ok: false, reason: 'not an object' };
  const id = raw.id;
  if (typeof id !== 'string' || id === '') return { ok: false, reason: 'id: required' };
  const fail = (reason: string): MapOutcome => ({ ok: false, memoryId: id, reason });

  const userId = field(raw, 'user_id', 'userId');
  if (userId === undefined || userId === '') {
    return fail('user_id: required (a memory without a user cannot be migrated)');
  }
  if (typeof userId !== 'string') return fail('user_id: must be a string');
  const userCheck = idSchema.safeParse(userId);
  if (!userCheck.success) return fail(`user_id: ${userCheck.error.issues[0]?.message ?? ''}`);

  const runId = field(raw, 'run_id', 'runId', 'session_id', 'sessionId');
  if (runId !== undefined && (typeof runId !== 'string' || runId === '')) {
    return fail('run_id: must be a non-empty string');
  }
  const threadId = `${MEM0_ID_PREFIX}${runId ?? userId}`;
  const threadCheck = idSchema.safeParse(threadId);
  if (!threadCheck.success) {
    const name = runId === undefined ? 'user_id' : 'run_id';
    return fail(
      `${name}: thread id ${threadId.slice(0, 40)}…: ${threadCheck.error.issues[0]?.message ?? ''}`,
    );
  }

  const metadata = field(raw, 'metadata') ?? {};
  if (!isObject(metadata)) return fail('metadata: must be an object');
  const role = field(raw, 'role') ?? metadata.role ?? 'user';
  if (typeof role !== 'string' || !ROLES.includes(role)) {
    return fail(`role: ${JSON.stringify(role)} is not one of ${ROLES.join(', ')}`);
  }
  const memory = raw.memory;
  if (typeof memory !== 'string') return fail('memory: must be a string');
  const createdAt = field(raw, 'created_at', 'createdAt');
  if (createdAt === undefined) return fail('created_at: required');

  const parsed = messageSchema(contentMaxChars).safeParse({
    client_message_id: `${MEM0_ID_PREFIX}${id}`,
    role,
    content: memory,
    created_at: createdAt,
    metadata: { ...metadata, mem0_memory_id: id },
  });
  if (!parsed.success) {
    const first = describeIssues(parsed.error).fields[0] ?? 'invalid';
    const name = /^[a-z_]+/.exec(first)?.[0] ?? '';
    return fail(`${EXPORT_FIELD[name] ?? name}${first.slice(name.length)}`);
  }
  const message = parsed.data;
  return {
    ok: true,
    mapped: {
      record,
      memoryId: id,
      userId,
      threadId,
      runId,
      createdAtMs: Date.parse(message.created_at ?? ''),
      message,
    },
  };
}

/**
 * Plans the migration of a mem0 export: each memory becomes one message (`client_message_id`
 * `mem0-<id>`, content = the memory, its created_at and metadata plus `mem0_memory_id`) in thread
 * `mem0-<run_id>` (or `mem0-<user_id>` for memories without a run) of its user, ordered by
 * created_at, then export position. A record repeating an earlier id with the same content is a
 * duplicate; one that cannot be mapped is rejected with the reason, and the rest go on.
 */
export function planMigration(records: readonly unknown[], contentMaxChars: number): MigrationPlan {
  const rejected: RejectedRecord[] = [];
  const reject = (m: Mapped, reason: string) =>
    rejected.push({ record: m.record, memoryId: m.memoryId, reason });
  const byId = new Map<string, Entry>();
  const byThread = new Map<string, Entry[]>();

  records.forEach((raw, i) => {
    const outcome = mapRecord(raw, i + 1, contentMaxChars);
    if (!outcome.ok) {
      rejected.push({ record: i + 1, memoryId: outcome.memoryId, reason: outcome.reason });
      return;
    }
    const { mapped } = outcome;
    const key = canonical([mapped.userId, mapped.threadId, mapped.message]);
    const first = byId.get(mapped.memoryId);
    if (first === undefined) {
      const entry = { mapped, key, duplicates: [] };
      byId.set(mapped.memoryId, entry);
      byThread.set(mapped.threadId, [...(byThread.get(mapped.threadId) ?? []), entry]);
    } else if (first.key === key) {
      first.duplicates.push(mapped);
    } else {
      reject(mapped, `id: repeats record ${first.mapped.record} with other content, user or run`);
    }
  });

  const threads: PlannedThread[] = [];
  let duplicates = 0;
  // Threads in the order the export first names them; Map keeps insertion order.
  for (const [threadId, entries] of byThread) {
    entries.sort(
      (a, b) => a.mapped.createdAtMs - b.mapped.createdAtMs || a.mapped.record - b.mapped.record,
    );
    // A thread belongs to the user of its first message, as in the API.
    const owner = entries[0]?.mapped.userId ?? '';
    const messages: IntakeMessage[] = [];
    let unique = 0;
    for (const { mapped, duplicates: repeats } of entries) {
      if (mapped.userId !== owner) {
        const reason = `run_id: run ${mapped.runId ?? ''} belongs to user ${owner}, not ${mapped.userId}`;
        for (const m of [mapped, ...repeats]) reject(m, reason);
        continue;
      }
      unique += 1;
      duplicates += repeats.length;
      messages.push(mapped.message, ...repeats.map((d) => d.message));
    }
    threads.push({ threadId, userId: owner, messages, unique });
  }
  rejected.sort((a, b) => a.record - b.record);
  return {
    threads,
    users: new Set(threads.map((t) => t.userId)).size,
    messages: threads.reduce((n, t) => n + t.unique, 0),
    duplicates,
    rejected,
  };
}
