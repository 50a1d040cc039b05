import type { MemoryMode } from '@memfleet/config/load-config';
import { toError } from '@memfleet/errors/to-error';
import type { Flags } from '@memfleet/flags/flags';
import type { Logger } from '@memfleet/logger/create-logger';
import { BackendError } from '@memfleet/memory/backend-error';
import type { BackendGate } from '@memfleet/memory/backend-gate';
import type { MemoryBackend, MemoryContext } from '@memfleet/memory/memory-backend';
import type { ReaderMetrics } from '@memfleet/metrics/reader-metrics';
import { outboxKeys } from '@memfleet/outbox/outbox-keys';
import type { SnapshotReader } from './thread-snapshot.ts';

/** Why an answer did not use memory. */
export type FallbackReason = 'timeout' | 'breaker_open' | 'mode_off' | 'not_in_canary' | 'error';

/** A message in a context answer. */
export interface AnswerMessage {
  role: string;
  content: string;
  created_at: string;
}

/** The body of `GET /v1/threads/{thread_id}/context`. */
export interface ContextAnswer {
  used: boolean;
  mode: MemoryMode;
  source: string;
  took_ms: number;
  reason?: FallbackReason;
  context: string;
  messages: AnswerMessage[];
}

/** Where the reader writes the contexts it got from the backend (a Redis client in production). */
export interface ContextCache {
  set(key: string, value: string, px: 'PX', ttlMs: number): Promise<unknown>;
}

/** Reads a thread's context; `startedAt` (default: now) is when the request arrived. */
export type ContextReader = (
  tenant: string,
  threadId: string,
  userId: string,
  startedAt?: number,
) => Promise<ContextAnswer | undefined>;

/** Backend reads one reader process keeps open at most (distinct threads; identical reads share one). */
export const MAX_BACKEND_READS_IN_FLIGHT = 32;

/**
 * How long before the end of the budget a backend read is abandoned: the time kept for the
 * fallback answer and for the event loop running late under load. At most half the budget.
 */
export const backendReserveMs = (budgetMs: number): number =>
  Math.min(50, Math.floor(budgetMs / 2));

/** Dependencies of {@link createContextReader}. */
export interface ContextReaderDeps {
  backend: MemoryBackend;
  /**
   * The read path's own breaker: reads over budget open it, so a hanging backend costs one probe
   * per cooldown instead of a stalled call per read. Separate from the writes' breaker, since a
   * backend too slow for a 250 ms read may still take writes. Its state (and that of the writes'
   * breaker) comes with the snapshot; `acquire` is asked only before a backend call.
   */
  readGate: Pick<BackendGate, 'acquire' | 'success' | 'failure'>;
  flags: Pick<Flags, 'forThread' | 'recordAuthFailure'>;
  /** The thread's owner, last messages, breaker states and cached context, in one Redis call. */
  snapshot: SnapshotReader;
  cache: ContextCache;
  metrics: ReaderMetrics;
  logger: Pick<Logger, 'warn'>;
  settings: {
    /** Key prefix (the fleet's hash tag) of cache keys. */
    prefix: string;
    /** Hard budget of one read, in ms (`READ_BUDGET_MS`). */
    budgetMs: number;
    /** How long a backend context stays cached. 0 disables the cache. */
    cacheTtlMs: number;
    /** Backend reads this process keeps open at most; beyond, reads fall back at once. */
    maxBackendReads?: number;
  };
  now?: () => number;
}

interface Budget {
  startedAt: number;
  /** When the backend call is abandoned. */
  backendDeadline: number;
}

interface SharedCall {
  call: Promise<MemoryContext>;
  signal: AbortSignal;
}

/** A warning logged at most once per `everyMs`, with the count of those left out since the last. */
function throttledWarn(
  logger: Pick<Logger, 'warn'>,
  message: string,
  everyMs: number,
  now: () => number,
): (meta: Record<string, unknown>) => void {
  let loggedAt = -Infinity;
  let suppressed = 0;
  return (meta) => {
    const t = now();
    if (t - loggedAt < everyMs) {
      suppressed += 1;
      return;
    }
    logger.warn(message, { ...meta, suppressed });
    loggedAt = t;
    suppressed = 0;
  };
}

/** How often the reader logs a warning that may repeat for every read (a slow or failing backend). */
export const REPEATED_WARNING_EVERY_MS = 1000;

const sleep = (ms: number) =>
  new Promise<'late'>((resolve) => {
    setTimeout(() => resolve('late'), Math.max(0, ms)).unref();
  });

function parseBody(body: string): AnswerMessage | undefined {
  try {
    const value = JSON.parse(body) as { role?: unknown; content?: unknown; created_at?: unknown };
    if (typeof value.role !== 'string' || typeof value.content !== 'string') return undefined;
    return {
      role: value.role,
      content: value.content,
      created_at: typeof value.created_at === 'string' ? value.created_at : '',
    };
  } catch {
    return undefined;
  }
}

/**
 * Reads memory context for a chat turn within a hard budget: from the per-turn cache, else from
 * the backend (one call shared by identical concurrent reads, cancelled before the budget runs
 * out, at most `maxBackendReads` open at a time), else from the fallback: the thread's last
 * messages as memfleet itself recorded them at accept time, so the fallback needs no backend.
 * Resolves `undefined` when the tenant has no such thread for that user.
 */
export function createContextReader(deps: ContextReaderDeps): ContextReader {
  const { backend, settings, metrics } = deps;
  const now = deps.now ?? Date.now;
  const maxBackendReads = settings.maxBackendReads ?? MAX_BACKEND_READS_IN_FLIGHT;
  const reserveMs = backendReserveMs(settings.budgetMs);
  const inFlight = new Map<string, SharedCall>();
  // Backend calls open, plus slots reserved by reads waiting for their breaker permit.
  let backendSlots = 0;
  const keys = outboxKeys(settings.prefix);
  // A hanging or failing backend would otherwise log one line per read.
  const warnSlow = throttledWarn(deps.logger, 'context_slow', REPEATED_WARNING_EVERY_MS, now);
  const warnFailed = throttledWarn(
    deps.logger,
    'context read failed',
    REPEATED_WARNING_EVERY_MS,
    now,
  );

  // Labelled children, looked up once per label set instead of hashing the labels on every read.
  const readCounters = new Map<string, { inc(): void }>();
  const readTimers = new Map<string, { observe(value: number): void }>();
  function count(source: string, reason: string, seconds: number): void {
    const key = `${source}\n${reason}`;
    let counter = readCounters.get(key);
    if (counter === undefined) {
      counter = metrics.reads.labels({ source, reason });
      readCounters.set(key, counter);
    }
    counter.inc();
    let timer = readTimers.get(source);
    if (timer === undefined) {
      timer = metrics.readDuration.labels({ source });
      readTimers.set(source, timer);
    }
    timer.observe(seconds);
  }

  function answer(
    budget: Budget,
    used: boolean,
    mode: MemoryMode,
    source: string,
    reason: FallbackReason | undefined,
    context: string,
    messages: AnswerMessage[],
  ): ContextAnswer {
    const tookMs = now() - budget.startedAt;
    count(source, reason ?? 'none', tookMs / 1000);
    return reason === undefined
      ? { used, mode, source, took_ms: tookMs, context, messages }
      : { used, mode, source, took_ms: tookMs, reason, context, messages };
  }

  const fallback = (
    budget: Budget,
    mode: MemoryMode,
    reason: FallbackReason,
    messages: AnswerMessage[],
  ): ContextAnswer => answer(budget, false, mode, 'fallback', reason, '', messages);

  /** Starts the one backend call of a thread and mode; it holds a slot until it settles. */
  function startBackendRead(
    key: string,
    thread: { tenant: string; threadId: string; userId: string },
    deadline: number,
  ): SharedCall {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), Math.max(0, deadline - now()));
    timer.unref();
    // The messages of the answer come from memfleet's own record; the backend gives the context.
    const shared: SharedCall = {
      call: backend.getContext(thread, { signal: controller.signal, messages: 0 }),
      signal: controller.signal,
    };
    inFlight.set(key, shared);
    const settled = (ok: boolean) => {
      clearTimeout(timer);
      backendSlots -= 1;
      if (!ok) {
        if (inFlight.get(key) === shared) inFlight.delete(key);
        return;
      }
      // Reads that looked in the cache before this answer was written there still join it.
      setTimeout(() => {
        if (inFlight.get(key) === shared) inFlight.delete(key);
      }, settings.budgetMs).unref();
    };
    shared.call.then(
      () => {
        settled(true);
      },
      () => {
        settled(false);
      },
    );
    return shared;
  }

  async function fromBackend(
    budget: Budget,
    thread: { tenant: string; threadId: string; userId: string },
    mode: MemoryMode,
    key: string,
    messages: AnswerMessage[],
  ): Promise<ContextAnswer> {
    const { tenant, threadId } = thread;
    // A call for this thread already open is joined; a new one needs a free slot, taken now so
    // that reads waiting for their permit cannot together go over the cap.
    let reserved = false;
    if (!inFlight.has(key)) {
      if (backendSlots >= maxBackendReads) return fallback(budget, mode, 'breaker_open', messages);
      backendSlots += 1;
      reserved = true;
    }
    const release = () => {
      if (reserved) {
        reserved = false;
        backendSlots -= 1;
      }
    };

    let permit: Awaited<ReturnType<typeof deps.readGate.acquire>>;
    try {
      permit = await deps.readGate.acquire();
    } catch (err: unknown) {
      deps.logger.warn('read breaker unreadable', { err: toError(err) });
      permit = { verdict: 'go', dirty: false };
    }
    if (permit.verdict === 'wait') {
      release();
      return fallback(budget, mode, 'breaker_open', messages);
    }
    const probe = permit.verdict === 'probe';
    const report = (ok: boolean): void => {
      const done = ok
        ? probe || (permit.verdict === 'go' && permit.dirty)
          ? deps.readGate.success(probe)
          : Promise.resolve()
        : deps.readGate.failure('transient', probe);
      done.catch((err: unknown) => {
        deps.logger.warn('read breaker update failed', { err: toError(err) });
      });
    };

    if (now() >= budget.backendDeadline) {
      // The permit came too late to ask the backend: not the backend's failure.
      release();
      return fallback(budget, mode, 'timeout', messages);
    }
    let shared = inFlight.get(key);
    if (shared === undefined) {
      if (!reserved) {
        // The call this read meant to join ended while it waited for its permit.
        if (backendSlots >= maxBackendReads) {
          return fallback(budget, mode, 'breaker_open', messages);
        }
        backendSlots += 1;
      }
      reserved = false;
      shared = startBackendRead(key, thread, budget.backendDeadline);
    } else {
      release();
      metrics.sharedReads.inc();
    }

    let result: MemoryContext | 'late';
    try {
      result = await Promise.race([shared.call, sleep(budget.backendDeadline - now())]);
    } catch (err: unknown) {
      // A call cancelled at its deadline (this read's, or the earlier one of the read it joined).
      if (shared.signal.aborted || now() >= budget.backendDeadline - 5) {
        result = 'late';
      } else {
        report(false);
        metrics.backendReads.inc({ backend: backend.name, outcome: 'error' });
        if (err instanceof BackendError && err.kind === 'auth') {
          await deps.flags.recordAuthFailure().catch(() => undefined);
        }
        warnFailed({ tenant, threadId, backend: backend.name, err: toError(err) });
        return fallback(budget, mode, 'error', messages);
      }
    }
    if (result === 'late') {
      // The shared call has its own timer and is cancelled at its deadline.
      shared.call.catch(() => undefined);
      report(false);
      return timedOut(budget, thread, mode, messages);
    }
    report(true);
    metrics.backendReads.inc({ backend: backend.name, outcome: 'ok' });
    if (settings.cacheTtlMs > 0) {
      deps.cache.set(key, result.context, 'PX', settings.cacheTtlMs).catch((err: unknown) => {
        deps.logger.warn('context cache write failed', { tenant, threadId, err: toError(err) });
      });
    }
    return answer(budget, true, mode, backend.name, undefined, result.context, messages);
  }

  function timedOut(
    budget: Budget,
    thread: { tenant: string; threadId: string },
    mode: MemoryMode,
    messages: AnswerMessage[],
  ): ContextAnswer {
    metrics.backendReads.inc({ backend: backend.name, outcome: 'timeout' });
    warnSlow({
      tenant: thread.tenant,
      threadId: thread.threadId,
      backend: backend.name,
      budget_ms: settings.budgetMs,
    });
    return fallback(budget, mode, 'timeout', messages);
  }

  return async function readContext(tenant, threadId, userId, startedAt = now()) {
    const budget: Budget = {
      startedAt,
      backendDeadline: startedAt + settings.budgetMs - reserveMs,
    };
    const flags = deps.flags.forThread(tenant, threadId);
    const useBackend = flags.reads;
    const snap = await deps.snapshot(tenant, threadId, flags.mode, useBackend);
    // Nothing of the thread is shown, or looked at, before the owner check.
    if (snap.owner === undefined || snap.owner !== userId) return undefined;
    if (snap.failed.length > 0) {
      deps.logger.warn('context read: part of the thread unreadable', {
        tenant,
        threadId,
        parts: snap.failed,
      });
    }
    const messages: AnswerMessage[] = [];
    for (const body of snap.recent) {
      const m = parseBody(body);
      if (m !== undefined) messages.push(m);
    }

    if (!useBackend) {
      return fallback(budget, flags.mode, flags.readBlockedBy ?? 'mode_off', messages);
    }
    if (snap.writeGateBlocked || snap.readGateBlocked) {
      return fallback(budget, flags.mode, 'breaker_open', messages);
    }
    if (settings.cacheTtlMs > 0 && snap.cached !== undefined) {
      return answer(budget, true, flags.mode, 'cache', undefined, snap.cached, messages);
    }
    if (now() >= budget.backendDeadline) {
      return fallback(budget, flags.mode, 'timeout', messages);
    }
    const key = keys.context(tenant, threadId, flags.mode);
    return fromBackend(budget, { tenant, threadId, userId }, flags.mode, key, messages);
  };
}
