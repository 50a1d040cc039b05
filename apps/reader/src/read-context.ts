import type { MemoryMode } from '@memfleet/config/load-config';
import { toError } from '@memfleet/errors/to-error';
import type { Flags } from '@memfleet/flags/flags';
import type { Logger } from '@memfleet/logger/create-logger';
import { BackendError } from '@memfleet/memory/backend-error';
import type { BackendGate } from '@memfleet/memory/backend-gate';
import type { MemoryBackend, MemoryContext } from '@memfleet/memory/memory-backend';
import type { ReaderMetrics } from '@memfleet/metrics/reader-metrics';
import type { Outbox } from '@memfleet/outbox/outbox';
import { outboxKeys } from '@memfleet/outbox/outbox-keys';

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

/** The cache the reader keeps per turn (a Redis client in production). */
export interface ContextCache {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, px: 'PX', ttlMs: number): Promise<unknown>;
}

/** Dependencies of {@link createContextReader}. */
export interface ContextReaderDeps {
  backend: MemoryBackend;
  /** The write path's gate: its open breaker or rate-limit pause also stops reads. */
  gate: Pick<BackendGate, 'state'>;
  /**
   * The read path's own breaker: reads over budget open it, so a hanging backend costs one probe
   * per cooldown instead of a stalled call per read. Separate from the writes' breaker, since a
   * backend too slow for a 250 ms read may still take writes.
   */
  readGate: Pick<BackendGate, 'acquire' | 'success' | 'failure'>;
  flags: Pick<Flags, 'forThread' | 'recordAuthFailure'>;
  outbox: Pick<Outbox, 'threadOwner' | 'recent'>;
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
    /** Recent messages in a fallback answer. */
    fallbackMessages: number;
  };
  now?: () => number;
}

interface Budget {
  startedAt: number;
  deadline: number;
}

// Time kept back from the budget for the fallback answer once the backend has run out of time.
const FALLBACK_RESERVE_MS = 25;

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
 * the backend (one call shared by identical concurrent reads, cancelled when the budget runs out),
 * else from the fallback: the thread's last messages as memfleet itself recorded them at accept
 * time, so the fallback needs no backend. Returns `undefined` when the tenant has no such thread
 * for that user.
 */
export function createContextReader(deps: ContextReaderDeps) {
  const { backend, settings, metrics } = deps;
  const now = deps.now ?? Date.now;
  const inFlight = new Map<string, Promise<MemoryContext>>();
  const keys = outboxKeys(settings.prefix);
  const cacheKey = (tenant: string, threadId: string, mode: MemoryMode) =>
    keys.context(tenant, threadId, mode);

  function answer(budget: Budget, body: Omit<ContextAnswer, 'took_ms'>): ContextAnswer {
    const tookMs = now() - budget.startedAt;
    metrics.reads.inc({ source: body.source, reason: body.reason ?? 'none' });
    metrics.readDuration.observe({ source: body.source }, tookMs / 1000);
    return { ...body, took_ms: tookMs };
  }

  const fallback = (
    budget: Budget,
    mode: MemoryMode,
    reason: FallbackReason,
    messages: AnswerMessage[],
  ): ContextAnswer =>
    answer(budget, { used: false, mode, source: 'fallback', reason, context: '', messages });

  /** Resolves `'late'` if `promise` has not settled by the deadline; a rejection reads as `fallback`. */
  async function within<T>(
    budget: Budget,
    promise: Promise<T>,
    fallbackValue: T,
    what: string,
  ): Promise<T | 'late'> {
    try {
      return await Promise.race([promise, sleep(budget.deadline - now())]);
    } catch (err: unknown) {
      deps.logger.warn(`${what} failed`, { err: toError(err) });
      return fallbackValue;
    }
  }

  /** One backend call per thread and mode at a time; later identical reads join it. */
  function sharedBackendRead(
    key: string,
    thread: { tenant: string; threadId: string; userId: string },
    deadline: number,
  ): Promise<MemoryContext> {
    const running = inFlight.get(key);
    if (running !== undefined) {
      metrics.sharedReads.inc();
      return running;
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), Math.max(0, deadline - now()));
    timer.unref();
    // The messages of the answer come from memfleet's own record; the backend gives the context.
    const call = backend.getContext(thread, { signal: controller.signal, messages: 0 });
    inFlight.set(key, call);
    call.then(
      () => {
        clearTimeout(timer);
        // Reads that looked in the cache before this answer was written there still join it.
        setTimeout(() => {
          if (inFlight.get(key) === call) inFlight.delete(key);
        }, settings.budgetMs).unref();
      },
      () => {
        clearTimeout(timer);
        if (inFlight.get(key) === call) inFlight.delete(key);
      },
    );
    return call;
  }

  async function fromBackend(
    budget: Budget,
    thread: { tenant: string; threadId: string; userId: string },
    mode: MemoryMode,
    key: string,
    messages: AnswerMessage[],
  ): Promise<ContextAnswer> {
    const { tenant, threadId } = thread;
    let permit: Awaited<ReturnType<typeof deps.readGate.acquire>>;
    try {
      permit = await deps.readGate.acquire();
    } catch (err: unknown) {
      deps.logger.warn('read breaker unreadable', { err: toError(err) });
      permit = { verdict: 'go', dirty: false };
    }
    if (permit.verdict === 'wait') return fallback(budget, mode, 'breaker_open', messages);
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

    const backendDeadline = budget.deadline - FALLBACK_RESERVE_MS;
    const call = sharedBackendRead(key, thread, backendDeadline);
    let result: MemoryContext | 'late';
    try {
      result = await Promise.race([call, sleep(backendDeadline - now())]);
    } catch (err: unknown) {
      // The call's own abort timer and the race's timer share the deadline; either may fire first.
      if (now() >= backendDeadline - 5) {
        result = 'late';
      } else {
        report(false);
        deps.metrics.backendReads.inc({ backend: backend.name, outcome: 'error' });
        if (err instanceof BackendError && err.kind === 'auth') {
          await deps.flags.recordAuthFailure().catch(() => undefined);
        }
        deps.logger.warn('context read failed', { tenant, threadId, err: toError(err) });
        return fallback(budget, mode, 'error', messages);
      }
    }
    if (result === 'late') {
      // The shared call has its own timer and is cancelled at the same deadline.
      call.catch(() => undefined);
      report(false);
      metrics.backendReads.inc({ backend: backend.name, outcome: 'timeout' });
      deps.logger.warn('context_slow', {
        tenant,
        threadId,
        backend: backend.name,
        budget_ms: settings.budgetMs,
      });
      return fallback(budget, mode, 'timeout', messages);
    }
    report(true);
    metrics.backendReads.inc({ backend: backend.name, outcome: 'ok' });
    if (settings.cacheTtlMs > 0) {
      deps.cache.set(key, result.context, 'PX', settings.cacheTtlMs).catch((err: unknown) => {
        deps.logger.warn('context cache write failed', { tenant, threadId, err: toError(err) });
      });
    }
    return answer(budget, {
      used: true,
      mode,
      source: backend.name,
      context: result.context,
      messages,
    });
  }

  return async function readContext(
    tenant: string,
    threadId: string,
    userId: string,
  ): Promise<ContextAnswer | undefined> {
    const startedAt = now();
    const budget: Budget = { startedAt, deadline: startedAt + settings.budgetMs };
    const flags = deps.flags.forThread(tenant, threadId);
    const key = cacheKey(tenant, threadId, flags.mode);
    const useBackend = flags.reads;
    // Independent lookups go out together (one round trip with auto-pipelining); nothing is
    // shown before the owner check below.
    const [owner, recent, gate, cached] = await Promise.all([
      deps.outbox.threadOwner(tenant, threadId),
      within(
        budget,
        deps.outbox.recent(tenant, threadId, settings.fallbackMessages),
        [],
        'fallback read',
      ),
      useBackend ? within(budget, deps.gate.state(), undefined, 'backend gate read') : undefined,
      useBackend && settings.cacheTtlMs > 0
        ? within(budget, deps.cache.get(key), null, 'context cache read')
        : null,
    ]);
    if (owner === undefined || owner !== userId) return undefined;
    const messages =
      recent === 'late'
        ? []
        : recent.flatMap((b) => {
            const m = parseBody(b);
            return m === undefined ? [] : [m];
          });

    if (!flags.reads) {
      return fallback(budget, flags.mode, flags.readBlockedBy ?? 'mode_off', messages);
    }
    if (
      gate !== undefined &&
      gate !== 'late' &&
      (gate.breaker === 2 || gate.rateLimitedForMs > 0)
    ) {
      return fallback(budget, flags.mode, 'breaker_open', messages);
    }
    if (typeof cached === 'string') {
      return answer(budget, {
        used: true,
        mode: flags.mode,
        source: 'cache',
        context: cached,
        messages,
      });
    }
    if (now() >= budget.deadline - FALLBACK_RESERVE_MS) {
      return fallback(budget, flags.mode, 'timeout', messages);
    }
    return fromBackend(budget, { tenant, threadId, userId }, flags.mode, key, messages);
  };
}
