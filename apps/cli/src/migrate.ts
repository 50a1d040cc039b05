import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ZepError, type Zep, type ZepClient } from '@getzep/zep-cloud';
import type { RedisClient } from '@memfleet/redis/connect-redis';
import { toError } from '@memfleet/errors/to-error';
import { HttpError } from '@memfleet/http/http-error';
import type { AcceptMessages } from '@memfleet/intake/accept-messages';
import { MAX_MESSAGES_PER_REQUEST } from '@memfleet/intake/message-request';
import { zepThreadId, zepUserId } from '@memfleet/memory/zep-backend';
import type { Outbox } from '@memfleet/outbox/outbox';
import {
  ExportFormatError,
  exportRecords,
  MEM0_ID_PREFIX,
  type MigrationPlan,
  type PlannedThread,
} from './mem0-export.ts';

/** Bad input the operator can fix (a file that is not an export, an unreachable source). */
export class MigrateUsageError extends Error {
  override name = 'MigrateUsageError';
}

/** The memories to migrate and a digest naming them (the resume cursor's key). */
export interface MigrationSource {
  records: unknown[];
  sha256: string;
}

/** Reads a mem0 export file (see `exportRecords`); problems name `--file`. */
export async function readExportFile(path: string): Promise<MigrationSource> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err: unknown) {
    throw new MigrateUsageError(`--file: cannot read ${path}: ${toError(err).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err: unknown) {
    throw new MigrateUsageError(`--file: ${path} is not JSON: ${toError(err).message}`);
  }
  try {
    return { records: exportRecords(value), sha256: sha256(bytes) };
  } catch (err: unknown) {
    if (err instanceof ExportFormatError) throw new MigrateUsageError(`--file: ${err.message}`);
    throw err;
  }
}

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** A page of a mem0 list answer. */
interface Mem0Page<T> {
  results: T[];
  next?: unknown;
}

/** What the migration reads from the mem0 platform; `MemoryClient` of `mem0ai` is one. */
export interface Mem0Reader {
  users(options: {
    page: number;
    pageSize: number;
  }): Promise<Mem0Page<{ name: string; type?: string }>>;
  getAll(options: {
    filters: { user_id: string };
    page: number;
    pageSize: number;
  }): Promise<Mem0Page<unknown>>;
}

const USERS_PAGE = 100;
/** mem0's largest getAll page. */
const MEMORIES_PAGE = 200;

/**
 * Reads every memory of every user from the mem0 platform: the users (`GET /v1/entities/`, paged,
 * entities of type `user`), then each user's memories (`getAll` with `filters: { user_id }`,
 * paged). The digest covers the records as read, so a changed source starts a new cursor.
 */
export async function readFromMem0(client: Mem0Reader): Promise<MigrationSource> {
  const users: string[] = [];
  for (let page = 1; ; page++) {
    const res = await client.users({ page, pageSize: USERS_PAGE });
    for (const entity of res.results) {
      if (entity.type === undefined || entity.type === 'user') users.push(entity.name);
    }
    if (!hasNext(res)) break;
  }
  const records: unknown[] = [];
  for (const userId of new Set(users)) {
    for (let page = 1; ; page++) {
      const res = await client.getAll({
        filters: { user_id: userId },
        page,
        pageSize: MEMORIES_PAGE,
      });
      records.push(...res.results);
      if (!hasNext(res)) break;
    }
  }
  return { records, sha256: sha256(JSON.stringify(records)) };
}

const hasNext = (page: Mem0Page<unknown>): boolean =>
  page.results.length > 0 && page.next !== undefined && page.next !== null && page.next !== '';

/** How long a resume cursor is kept after its last change: the outbox's default dedupe window. */
const CURSOR_TTL_S = 30 * 86_400;

/** Redis key of the resume cursor: the set of threads of this source fully handed to the intake. */
export function cursorKey(prefix: string, tenant: string, sourceSha256: string): string {
  return `${prefix}:migrate:${tenant}:${sourceSha256}`;
}

/** The threads a previous run of this source finished. */
export async function finishedThreads(redis: RedisClient, key: string): Promise<Set<string>> {
  return new Set(await redis.smembers(key));
}

/** A thread the fleet refused (its id belongs to another user there). */
export interface RefusedThread {
  threadId: string;
  userId: string;
  messages: number;
  reason: string;
}

/** What a run did. */
export interface RunResult {
  /** Messages recorded now. */
  queued: number;
  /** Messages the outbox already knew (export duplicates, re-sent after an interruption). */
  alreadyInFleet: number;
  /** Threads (and their messages) a previous run finished, not sent again. */
  skippedThreads: number;
  skippedMessages: number;
  refused: RefusedThread[];
}

/** Dependencies of {@link runMigration}. */
export interface RunDeps {
  redis: RedisClient;
  accept: AcceptMessages;
  tenant: string;
  /** The resume cursor ({@link cursorKey}). */
  cursor: string;
  /** Forget the cursor first and send every thread. Default false. */
  restart?: boolean;
  /** Called after each batch handed to the intake (or skipped), with its message count. */
  onMessages?: (n: number) => void;
}

/**
 * Hands every planned thread to the intake, one thread after the other, in batches of at most
 * 100 messages in thread order. A thread is added to the cursor once all its messages are
 * recorded, so a rerun skips it; the thread a run was interrupted in is sent again in full, and
 * the outbox answers `duplicate` for what it already holds.
 */
export async function runMigration(plan: MigrationPlan, deps: RunDeps): Promise<RunResult> {
  const { redis, accept, tenant, cursor } = deps;
  const onMessages = deps.onMessages ?? (() => undefined);
  if (deps.restart === true) await redis.del(cursor);
  const done = await finishedThreads(redis, cursor);
  const result: RunResult = {
    queued: 0,
    alreadyInFleet: 0,
    skippedThreads: 0,
    skippedMessages: 0,
    refused: [],
  };
  for (const thread of plan.threads) {
    if (done.has(thread.threadId)) {
      result.skippedThreads += 1;
      result.skippedMessages += thread.messages.length;
      onMessages(thread.messages.length);
      continue;
    }
    const refusal = await sendThread(thread, accept, tenant, result, onMessages);
    if (refusal !== undefined) {
      result.refused.push(refusal);
      continue;
    }
    await redis.multi().sadd(cursor, thread.threadId).expire(cursor, CURSOR_TTL_S).exec();
  }
  return result;
}

async function sendThread(
  thread: PlannedThread,
  accept: AcceptMessages,
  tenant: string,
  result: RunResult,
  onMessages: (n: number) => void,
): Promise<RefusedThread | undefined> {
  for (let i = 0; i < thread.messages.length; i += MAX_MESSAGES_PER_REQUEST) {
    const batch = thread.messages.slice(i, i + MAX_MESSAGES_PER_REQUEST);
    try {
      const res = await accept(tenant, thread.threadId, {
        user_id: thread.userId,
        messages: batch,
      });
      for (const r of res.results) {
        if (r.status === 'queued') result.queued += 1;
        else result.alreadyInFleet += 1;
      }
    } catch (err: unknown) {
      if (err instanceof HttpError && err.code === 'thread_owner_mismatch') {
        onMessages(thread.messages.length - i);
        return {
          threadId: thread.threadId,
          userId: thread.userId,
          messages: thread.messages.length,
          reason: `thread ${thread.threadId} belongs to another user in the fleet`,
        };
      }
      throw err;
    }
    onMessages(batch.length);
  }
  return undefined;
}

/** Where the migrated messages stand in the fleet. */
export interface FinalState {
  /** Messages still waiting to be written when the wait ended. */
  pending: number;
  /** Dead-lettered messages per thread. */
  dead: Map<string, number>;
}

/** Options of {@link waitUntilFinal}. */
export interface WaitOptions {
  /** Longest wait, in ms. */
  timeoutMs: number;
  /** Between two looks at the outbox, in ms. Default 500. */
  pollMs?: number;
  /** Called after each look with the number of messages final so far. */
  onFinal?: (n: number) => void;
}

const STATUS_BATCH = 500;

/**
 * Waits until every message of the plan is final in the fleet: written or dead in the outbox, or
 * unknown to it (never accepted, or final and expired, since only final records expire).
 */
export async function waitUntilFinal(
  outbox: Outbox,
  tenant: string,
  plan: MigrationPlan,
  options: WaitOptions,
): Promise<FinalState> {
  const threadOf = new Map<string, string>();
  for (const t of plan.threads) {
    for (const m of t.messages) threadOf.set(m.client_message_id, t.threadId);
  }
  let waiting = [...threadOf.keys()];
  const dead = new Map<string, number>();
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const still: string[] = [];
    for (let i = 0; i < waiting.length; i += STATUS_BATCH) {
      const ids = waiting.slice(i, i + STATUS_BATCH);
      const statuses = await Promise.all(ids.map((id) => outbox.status(tenant, id)));
      statuses.forEach((s, n) => {
        const id = ids[n] ?? '';
        if (s?.status === 'queued') still.push(id);
        if (s?.status === 'dead') {
          const threadId = threadOf.get(id) ?? s.threadId;
          dead.set(threadId, (dead.get(threadId) ?? 0) + 1);
        }
      });
    }
    waiting = still;
    options.onFinal?.(threadOf.size - waiting.length);
    if (waiting.length === 0 || Date.now() >= deadline) return { pending: waiting.length, dead };
    await sleep(Math.min(options.pollMs ?? 500, Math.max(0, deadline - Date.now())));
  }
}

/** A thread whose content in Zep differs from what the export says it should hold. */
export interface Difference {
  userId: string;
  threadId: string;
  expected: number;
  /** Migrated messages (`client_message_id` starting with `mem0-`) in the Zep thread. */
  inZep: number;
  /** Expected messages the Zep thread lacks. */
  missing: number;
  /** Messages the Zep thread holds more than once (each extra copy counts). */
  extra: number;
  /** Dead-lettered in the fleet (the reason is in `memfleet dlq list`). */
  dead: number;
  note: string;
}

/** A migrated thread as Zep holds it. */
interface ZepThreadView {
  ids: string[];
  owner: string | undefined;
}

const ZEP_PAGE = 100;

/** One page of a Zep thread's messages, oldest first; undefined when Zep has no such thread. */
async function zepPage(
  zep: ZepClient,
  threadId: string,
  cursor: number,
): Promise<Zep.MessageListResponse | undefined> {
  try {
    return await zep.thread.get(threadId, { limit: ZEP_PAGE, cursor });
  } catch (err: unknown) {
    if (err instanceof ZepError && err.statusCode === 404) return undefined;
    throw err;
  }
}

async function readZepThread(zep: ZepClient, threadId: string): Promise<ZepThreadView | undefined> {
  const ids: string[] = [];
  let owner: string | undefined;
  for (let cursor = 1; ; cursor++) {
    const res = await zepPage(zep, threadId, cursor);
    if (res === undefined) return cursor === 1 ? undefined : { ids, owner };
    owner ??= res.userId;
    const messages = res.messages ?? [];
    for (const m of messages) {
      const id: unknown = m.metadata?.client_message_id;
      if (typeof id === 'string' && id.startsWith(MEM0_ID_PREFIX)) ids.push(id);
    }
    if (messages.length < ZEP_PAGE || cursor * ZEP_PAGE >= (res.totalCount ?? 0)) {
      return { ids, owner };
    }
  }
}

/** Options of {@link compareWithZep}. */
export interface CompareOptions {
  tenant: string;
  /** Dead letters per thread, from {@link waitUntilFinal}. */
  dead?: ReadonlyMap<string, number>;
  /** Threads read at once. Default 8. */
  concurrency?: number;
  /** Called after each thread read. */
  onThread?: () => void;
}

/**
 * Compares, thread by thread, what the plan says each migrated thread holds with what Zep holds
 * (thread `<tenant>:<thread_id>`, as the zep backend names it): each expected message exactly
 * once, in a thread of the right user. Returns the threads that differ.
 */
export async function compareWithZep(
  plan: MigrationPlan,
  zep: ZepClient,
  options: CompareOptions,
): Promise<Difference[]> {
  const { tenant } = options;
  const differences: Difference[] = [];
  const queue = [...plan.threads];
  async function work(): Promise<void> {
    for (let thread = queue.shift(); thread !== undefined; thread = queue.shift()) {
      const ref = { tenant, userId: thread.userId, threadId: thread.threadId };
      const view = await readZepThread(zep, zepThreadId(ref));
      options.onThread?.();
      const expected = new Set(thread.messages.map((m) => m.client_message_id));
      const seen = new Map<string, number>();
      for (const id of view?.ids ?? []) seen.set(id, (seen.get(id) ?? 0) + 1);
      const missing = [...expected].filter((id) => !seen.has(id)).length;
      let extra = 0;
      for (const [id, n] of seen) extra += expected.has(id) ? n - 1 : n;
      const owner = zepUserId(ref);
      const notes: string[] = [];
      if (view === undefined) notes.push('no such thread in Zep');
      else if (view.owner !== undefined && view.owner !== owner) {
        notes.push(`belongs to ${view.owner} in Zep`);
      }
      if (missing > 0 || extra > 0 || notes.length > 0) {
        differences.push({
          userId: thread.userId,
          threadId: thread.threadId,
          expected: expected.size,
          inZep: view?.ids.length ?? 0,
          missing,
          extra,
          dead: options.dead?.get(thread.threadId) ?? 0,
          note: notes.join('; '),
        });
      }
    }
  }
  await Promise.all(Array.from({ length: options.concurrency ?? 8 }, work));
  const order = new Map(plan.threads.map((t, i) => [t.threadId, i]));
  return differences.sort((a, b) => (order.get(a.threadId) ?? 0) - (order.get(b.threadId) ?? 0));
}
