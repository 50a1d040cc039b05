import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { RedisClient } from '@memfleet/redis/connect-redis';
import type { Ledger, LedgerPosition, LedgerRecord } from '@memfleet/db/ledger';
import { HttpError } from '@memfleet/http/http-error';
import type { AcceptMessages } from '@memfleet/intake/accept-messages';
import { MAX_MESSAGES_PER_REQUEST } from '@memfleet/intake/message-request';
import { outboxMessageBody } from '@memfleet/jobs/outbox-message';
import { requestDrain, type DrainQueue } from '@memfleet/jobs/thread-drain';
import type { Outbox, RequeueInput } from '@memfleet/outbox/outbox';
import type { RedactOptions } from '@memfleet/redaction/redact';
import {
  backfillLineSchema,
  parseBackfillLine,
  redactedBody,
  type BackfillLine,
  type BackfillTarget,
  type Rate,
} from './backfill-input.ts';
import { TokenBucket } from './token-bucket.ts';

/** Where a backfill reads: the ledger's written rows, or a JSONL file. */
export type BackfillSource =
  { kind: 'ledger'; since: Date } | { kind: 'file'; path: string; since?: Date | undefined };

/** What one backfill run does. */
export interface BackfillOptions {
  source: BackfillSource;
  /** Only these tenants; every tenant when undefined. */
  tenants?: readonly string[] | undefined;
  /** The backend the fleet now writes to: messages already written there are skipped. */
  to: BackfillTarget;
  rate: Rate;
  /** Names the cursor (`<prefix>:backfill:<name>`). */
  name: string;
  /** Forget the stored cursor and start from the beginning. */
  restart: boolean;
  /** Count what would happen; change nothing (not even the cursor). */
  dryRun: boolean;
  /** How many messages or lines the run will go through (for a progress bar). */
  onTotal?: (total: number) => void;
  /** `n` more messages or lines done. */
  onProgress?: (n: number) => void;
  /** A problem with one message or line, as a line of text for the operator. */
  onProblem?: (text: string) => void;
}

/** Per-tenant outcome of a backfill. */
export interface TenantSummary {
  tenant: string;
  threads: number;
  /** Put back in their thread's outbox for the drain to write to the new backend. */
  requeued: number;
  /** File messages never seen before, accepted as the API accepts them. */
  new: number;
  /** Already written to the target backend: skipped. */
  onTarget: number;
  /** Still waiting in the outbox (the drain writes them anyway): skipped. */
  pending: number;
  /** Written before the ledger kept bodies (or an unreadable body): cannot be written again. */
  noBody: number;
  /** Refused: the thread belongs to another user, or the message to another thread. */
  failed: number;
}

/** The outcome of a backfill run. */
export interface BackfillReport {
  tenants: TenantSummary[];
  /** File lines that failed validation. */
  rejectedLines: number;
  /** File lines outside `--tenant` or `--since`, and blank lines. */
  skippedLines: number;
  /** Where the run started, when it continued a stored cursor. */
  resumedFrom: string | undefined;
  /** Problems counted by earlier runs of the same cursor (before where this one started). */
  earlierProblems: number;
  cursorKey: string;
}

/** Bad usage found once the run starts (a cursor of another source): exit 2. */
export class BackfillUsageError extends Error {}

/** Dependencies of {@link createBackfill}. */
export interface BackfillDeps {
  redis: RedisClient;
  prefix: string;
  outbox: Outbox;
  ledger: Ledger;
  queue: DrainQueue;
  /** The intake: how a file message never seen before enters the fleet (as through the API). */
  accept: AcceptMessages;
  defaultCountry: NonNullable<RedactOptions['defaultCountry']>;
  contentMaxChars: number;
  now?: () => number;
}

type Cursor =
  | { source: 'ledger'; after: LedgerPosition; problems: number }
  | { source: 'file'; line: number; problems: number };

/** How long a cursor is kept after its last update. */
const CURSOR_TTL_S = 30 * 86_400;
const PAGE = 1000;

interface FileItem {
  lineNo: number;
  line: BackfillLine;
}

type Verdict =
  | { kind: 'requeue'; input: RequeueInput }
  | { kind: 'new' }
  | { kind: 'pending' | 'on_target' | 'no_body' }
  | { kind: 'failed'; reason: string };

/**
 * Re-enqueues messages for a new backend: from the ledger (written rows with a body) or from a
 * JSONL file, thread by thread in order, through the outbox so the normal drain writes them, at
 * a bounded rate, with a cursor in Redis so an interrupted run continues where it stopped.
 */
export function createBackfill(deps: BackfillDeps) {
  const { redis, outbox, ledger } = deps;
  const now = deps.now ?? Date.now;

  return async function backfill(options: BackfillOptions): Promise<BackfillReport> {
    const cursorKey = `${deps.prefix}:backfill:${options.name}`;
    const problem = options.onProblem ?? (() => undefined);
    const progress = options.onProgress ?? (() => undefined);
    const capacity = Math.max(1, Math.floor(options.rate.perSecond));
    const bucket = new TokenBucket({ perSecond: options.rate.perSecond, capacity });
    const chunkSize = Math.min(MAX_MESSAGES_PER_REQUEST, capacity);
    const tenantFilter = options.tenants === undefined ? undefined : new Set(options.tenants);

    const summaries = new Map<string, TenantSummary>();
    const summary = (tenant: string): TenantSummary => {
      let s = summaries.get(tenant);
      if (s === undefined) {
        s = {
          tenant,
          threads: 0,
          requeued: 0,
          new: 0,
          onTarget: 0,
          pending: 0,
          noBody: 0,
          failed: 0,
        };
        summaries.set(tenant, s);
      }
      return s;
    };
    let rejectedLines = 0;
    let skippedLines = 0;
    const problems = (): number =>
      rejectedLines + [...summaries.values()].reduce((n, s) => n + s.failed + s.noBody, 0);

    // The cursor: read unless restarting; a dry run never writes it.
    if (options.restart && !options.dryRun) await redis.del(cursorKey);
    const stored = options.restart ? undefined : await loadCursor(redis, cursorKey);
    if (stored !== undefined && stored.source !== options.source.kind) {
      throw new BackfillUsageError(
        `--name: cursor ${options.name} belongs to a ${stored.source} backfill, not a ${options.source.kind} one (choose another --name, or --restart)`,
      );
    }
    const earlierProblems = stored?.problems ?? 0;
    const saveCursor = async (
      cursor: { source: 'ledger'; after: LedgerPosition } | { source: 'file'; line: number },
    ): Promise<void> => {
      if (options.dryRun) return;
      const value: Cursor = { ...cursor, problems: earlierProblems + problems() };
      await redis.set(cursorKey, JSON.stringify(value), 'EX', CURSOR_TTL_S);
    };

    /** Status and thread of each message as Redis has them (undefined: no record). */
    async function redisRecords(
      tenant: string,
      ids: readonly string[],
    ): Promise<({ status: string; thread: string } | undefined)[]> {
      if (ids.length === 0) return [];
      const pipeline = redis.pipeline();
      for (const id of ids) pipeline.hmget(outbox.keys.message(tenant, id), 'status', 'thread');
      const rows = (await pipeline.exec()) ?? [];
      return ids.map((_, i) => {
        const [err, value] = rows[i] ?? [null, null];
        if (err !== null) throw err;
        const [status, thread] = (value ?? []) as (string | null)[];
        return status === null || status === undefined || thread === null || thread === undefined
          ? undefined
          : { status, thread };
      });
    }

    /**
     * Puts `inputs` (one thread, one user, in order) back in the outbox at the rate, and queues
     * the drain. Returns each message's outcome; a thread of another user fails them all.
     */
    async function requeue(
      tenant: string,
      threadId: string,
      userId: string,
      inputs: readonly RequeueInput[],
    ): Promise<void> {
      const s = summary(tenant);
      if (options.dryRun) {
        const owner = await outbox.threadOwner(tenant, threadId);
        if (owner !== undefined && owner !== userId) {
          s.failed += inputs.length;
          problem(`${tenant}/${threadId}: user_id: the thread belongs to another user`);
        } else {
          s.requeued += inputs.length;
        }
        return;
      }
      for (let i = 0; i < inputs.length; i += chunkSize) {
        const chunk = inputs.slice(i, i + chunkSize);
        await bucket.take(chunk.length);
        const res = await outbox.requeue(tenant, threadId, userId, chunk, now());
        if (!res.ok) {
          s.failed += chunk.length;
          problem(`${tenant}/${threadId}: user_id: the thread belongs to another user`);
          continue;
        }
        let requeued = 0;
        res.results.forEach((r, n) => {
          if (r === 'requeued') requeued++;
          else if (r === 'pending') s.pending++;
          else {
            s.failed++;
            problem(
              `${tenant}/${threadId}: client_message_id ${chunk[n]?.clientMessageId ?? ''}: belongs to another thread`,
            );
          }
        });
        s.requeued += requeued;
        if (requeued > 0) await requestDrain(deps.queue, tenant, threadId);
      }
    }

    // ---- the ledger ----

    /** Rows of one thread (or a part of a long one), in seq order. */
    async function ledgerRows(rows: readonly LedgerRecord[]): Promise<void> {
      const first = rows[0];
      if (first === undefined) return;
      const s = summary(first.tenant);
      const candidates: (RequeueInput & { userId: string })[] = [];
      for (const r of rows) {
        if (r.backend === options.to) {
          s.onTarget++;
          continue;
        }
        const body = r.body === null ? undefined : outboxMessageBody.safeParse(r.body);
        if (body === undefined || !body.success) {
          s.noBody++;
          continue;
        }
        candidates.push({
          clientMessageId: r.clientMessageId,
          body: JSON.stringify(body.data),
          seq: r.seq,
          acceptedAtMs: r.acceptedAt.getTime(),
          userId: r.userId,
        });
      }
      if (options.dryRun && candidates.length > 0) {
        // Messages still waiting in the outbox would be left alone.
        const records = await redisRecords(
          first.tenant,
          candidates.map((c) => c.clientMessageId),
        );
        const waiting = new Set(
          candidates
            .filter((_, i) => records[i]?.status === 'queued')
            .map((c) => c.clientMessageId),
        );
        s.pending += waiting.size;
        candidates.splice(
          0,
          candidates.length,
          ...candidates.filter((c) => !waiting.has(c.clientMessageId)),
        );
      }
      // A thread has one user; rows naming another are refused by the outbox's owner check.
      for (let i = 0; i < candidates.length;) {
        const userId = candidates[i]?.userId ?? '';
        let j = i;
        while (j < candidates.length && candidates[j]?.userId === userId) j++;
        await requeue(first.tenant, first.threadId, userId, candidates.slice(i, j));
        i = j;
      }
      progress(rows.length);
    }

    async function fromLedger(since: Date): Promise<string | undefined> {
      const after = stored?.source === 'ledger' ? stored.after : undefined;
      const selection = { since, tenants: options.tenants, after };
      options.onTotal?.(await ledger.countWritten(selection));
      let current: LedgerPosition | undefined;
      let buffer: LedgerRecord[] = [];
      let pageAfter = after;
      const threadDone = async (): Promise<void> => {
        await ledgerRows(buffer);
        buffer = [];
        if (current !== undefined) await saveCursor({ source: 'ledger', after: current });
      };
      for (;;) {
        const page = await ledger.writtenRows({ ...selection, after: pageAfter }, PAGE);
        for (const row of page) {
          if (
            current !== undefined &&
            (row.tenant !== current.tenant || row.threadId !== current.threadId)
          ) {
            await threadDone();
          }
          if (current?.tenant !== row.tenant || current.threadId !== row.threadId) {
            summary(row.tenant).threads++;
          }
          current = { tenant: row.tenant, threadId: row.threadId, seq: row.seq };
          buffer.push(row);
          // A long thread goes in parts; the cursor moves only once the whole thread is done.
          if (buffer.length >= PAGE) {
            await ledgerRows(buffer);
            buffer = [];
          }
        }
        const last = page[page.length - 1];
        if (last !== undefined) {
          pageAfter = { tenant: last.tenant, threadId: last.threadId, seq: last.seq };
        }
        if (page.length < PAGE) break;
      }
      await threadDone();
      return after === undefined
        ? undefined
        : `after ${after.tenant}/${after.threadId} seq ${after.seq}`;
    }

    // ---- a file ----

    const lineSchema = backfillLineSchema(deps.contentMaxChars);

    /** Consecutive lines of one thread and user, at most one chunk, in file order. */
    async function fileGroup(items: readonly FileItem[]): Promise<void> {
      const head = items[0];
      if (head === undefined) return;
      const { tenant, thread_id: threadId, user_id: userId } = head.line;
      const s = summary(tenant);
      const ids = items.map((it) => it.line.client_message_id);
      const [inRedis, inLedger] = await Promise.all([
        redisRecords(tenant, ids),
        ledger.records(tenant, ids),
      ]);
      const rows = new Map(inLedger.map((r) => [r.clientMessageId, r]));
      const verdicts = items.map((it, i): Verdict => {
        const id = it.line.client_message_id;
        const r = inRedis[i];
        const row = rows.get(id);
        const thread = r?.thread ?? row?.threadId;
        if (thread !== undefined && thread !== threadId) {
          return { kind: 'failed', reason: `client_message_id: ${id} belongs to another thread` };
        }
        if (r?.status === 'queued') return { kind: 'pending' };
        if (row?.status === 'written' && row.backend === options.to) return { kind: 'on_target' };
        if (r === undefined && row === undefined) return { kind: 'new' };
        return {
          kind: 'requeue',
          input: {
            clientMessageId: id,
            body: redactedBody(it.line, deps.defaultCountry),
            seq: row?.seq ?? 0,
            acceptedAtMs: row?.acceptedAt.getTime() ?? now(),
          },
        };
      });
      // Runs of the same kind, in file order: requeued and new messages keep their order.
      for (let i = 0; i < items.length;) {
        const verdict = verdicts[i];
        if (verdict === undefined) break;
        let j = i + 1;
        while (j < items.length && verdicts[j]?.kind === verdict.kind) j++;
        const run = items.slice(i, j);
        const runVerdicts = verdicts.slice(i, j);
        if (verdict.kind === 'requeue') {
          await requeue(
            tenant,
            threadId,
            userId,
            runVerdicts.flatMap((v) => (v.kind === 'requeue' ? [v.input] : [])),
          );
        } else if (verdict.kind === 'new') {
          await accept(tenant, threadId, userId, run);
        } else if (verdict.kind === 'failed') {
          runVerdicts.forEach((v, n) => {
            s.failed++;
            problem(`line ${run[n]?.lineNo ?? 0}: ${v.kind === 'failed' ? v.reason : ''}`);
          });
        } else if (verdict.kind === 'pending') s.pending += run.length;
        else if (verdict.kind === 'on_target') s.onTarget += run.length;
        i = j;
      }
      progress(items.length);
    }

    /** File messages never seen before: through the intake, as the API accepts them. */
    async function accept(
      tenant: string,
      threadId: string,
      userId: string,
      items: readonly FileItem[],
    ): Promise<void> {
      const s = summary(tenant);
      if (options.dryRun) {
        const owner = await outbox.threadOwner(tenant, threadId);
        if (owner !== undefined && owner !== userId) {
          s.failed += items.length;
          problem(`${tenant}/${threadId}: user_id: the thread belongs to another user`);
        } else {
          s.new += items.length;
        }
        return;
      }
      await bucket.take(items.length);
      try {
        const res = await deps.accept(tenant, threadId, {
          user_id: userId,
          messages: items.map(({ line }) => ({
            client_message_id: line.client_message_id,
            role: line.role,
            content: line.content,
            ...(line.name !== undefined ? { name: line.name } : {}),
            created_at: line.created_at,
            ...(line.metadata !== undefined ? { metadata: line.metadata } : {}),
          })),
        });
        for (const r of res.results) {
          if (r.status === 'queued') s.new++;
          else s.pending++;
        }
      } catch (err: unknown) {
        if (!(err instanceof HttpError) || err.code !== 'thread_owner_mismatch') throw err;
        s.failed += items.length;
        problem(
          `lines ${items[0]?.lineNo ?? 0}-${items[items.length - 1]?.lineNo ?? 0}: user_id: thread ${threadId} belongs to another user`,
        );
      }
    }

    async function fromFile(path: string, since: Date | undefined): Promise<string | undefined> {
      const after = stored?.source === 'file' ? stored.line : 0;
      let total = 0;
      for await (const _ of lines(path)) total++;
      options.onTotal?.(Math.max(0, total - after));
      let group: FileItem[] = [];
      let lineNo = 0;
      const flush = async (doneThrough: number): Promise<void> => {
        await fileGroup(group);
        group = [];
        await saveCursor({ source: 'file', line: doneThrough });
      };
      const seen = new Map<string, Set<string>>();
      for await (const text of lines(path)) {
        lineNo++;
        if (lineNo <= after) continue;
        const parsed = text.trim() === '' ? undefined : parseBackfillLine(text, lineSchema);
        if (parsed === undefined || !parsed.ok) {
          if (parsed === undefined) skippedLines++;
          else {
            rejectedLines++;
            problem(`line ${lineNo}: ${parsed.error}`);
          }
          progress(1);
          continue;
        }
        const { line } = parsed;
        if (
          (tenantFilter !== undefined && !tenantFilter.has(line.tenant)) ||
          (since !== undefined && Date.parse(line.created_at) < since.getTime())
        ) {
          skippedLines++;
          progress(1);
          continue;
        }
        const head = group[0]?.line;
        if (
          head !== undefined &&
          (head.tenant !== line.tenant ||
            head.thread_id !== line.thread_id ||
            head.user_id !== line.user_id ||
            group.length >= chunkSize)
        ) {
          await flush(lineNo - 1);
        }
        const threads = seen.get(line.tenant) ?? new Set<string>();
        if (!threads.has(line.thread_id)) {
          threads.add(line.thread_id);
          seen.set(line.tenant, threads);
          summary(line.tenant).threads++;
        }
        group.push({ lineNo, line });
      }
      await flush(lineNo);
      return after === 0 ? undefined : `after line ${after}`;
    }

    const resumedFrom =
      options.source.kind === 'ledger'
        ? await fromLedger(options.source.since)
        : await fromFile(options.source.path, options.source.since);
    return {
      tenants: [...summaries.values()].sort((a, b) => a.tenant.localeCompare(b.tenant)),
      rejectedLines,
      skippedLines,
      resumedFrom,
      earlierProblems,
      cursorKey,
    };
  };
}

function lines(path: string): AsyncIterable<string> {
  return createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
}

async function loadCursor(redis: RedisClient, key: string): Promise<Cursor | undefined> {
  const raw = await redis.get(key);
  if (raw === null) return undefined;
  try {
    const value = JSON.parse(raw) as Partial<Cursor> & { after?: Partial<LedgerPosition> };
    const problems = typeof value.problems === 'number' ? value.problems : 0;
    if (value.source === 'file' && typeof value.line === 'number') {
      return { source: 'file', line: value.line, problems };
    }
    const a = value.after;
    if (
      value.source === 'ledger' &&
      typeof a?.tenant === 'string' &&
      typeof a.threadId === 'string' &&
      typeof a.seq === 'number'
    ) {
      return {
        source: 'ledger',
        after: { tenant: a.tenant, threadId: a.threadId, seq: a.seq },
        problems,
      };
    }
  } catch {
    // Reported below.
  }
  throw new BackfillUsageError(`the cursor at ${key} is unreadable: start over with --restart`);
}
