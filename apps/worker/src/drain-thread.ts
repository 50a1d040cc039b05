import { randomUUID } from 'node:crypto';
import type { Ledger, LedgerEntry } from '@memfleet/db/ledger';
import { toError } from '@memfleet/errors/to-error';
import type { Flags } from '@memfleet/flags/flags';
import { outboxMessageBody } from '@memfleet/jobs/outbox-message';
import type { Logger } from '@memfleet/logger/create-logger';
import { BackendError } from '@memfleet/memory/backend-error';
import type { BackendGate, GatePermit, PauseReason } from '@memfleet/memory/backend-gate';
import type { MemoryBackend, MemoryMessage, ThreadRef } from '@memfleet/memory/memory-backend';
import { withTimeout } from '@memfleet/memory/with-timeout';
import type { WorkerMetrics } from '@memfleet/metrics/worker-metrics';
import type { Outbox, OutboxHead, PendingMessage } from '@memfleet/outbox/outbox';

/** Dependencies of {@link createThreadDrainer}. */
export interface DrainDeps {
  outbox: Outbox;
  ledger: Ledger;
  backend: MemoryBackend;
  /** The fleet's shared rate-limit pause, breaker and credential hold for this backend. */
  gate: BackendGate;
  /** The live flags: a tenant in mode `off` is not written; auth outcomes feed the read downgrade. */
  flags: Pick<Flags, 'forThread' | 'recordAuthFailure' | 'recordAuthSuccess'>;
  metrics: WorkerMetrics;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Called when this worker saw the breaker close, so the queue can stop waiting at once. */
  onGateClosed?: () => Promise<void>;
  /** True once the process is shutting down: the drain hands the thread back after its batch. */
  isStopping: () => boolean;
  now?: () => number;
  settings: {
    /** Attempts of a message before it is dead-lettered. */
    maxAttempts: number;
    /** Thread lock lifetime; renewed while the drain runs. */
    lockTtlMs: number;
    /** A drain yields the worker slot after this long, so a busy thread cannot starve others. */
    sliceMs: number;
    /** Timeout of each backend call. */
    backendTimeoutMs: number;
    /** While writes are off for a tenant, its drains look again after this long (2 × FLAGS_REFRESH_MS). */
    modeOffRetryMs: number;
  };
}

/** How a drain run ended. */
export type DrainResult =
  | { outcome: 'drained'; written: number; dead: number }
  | { outcome: 'yielded'; written: number; dead: number }
  | { outcome: 'locked'; retryInMs: number }
  /** Memory writes are off for the thread's tenant: nothing written, no attempt used. */
  | { outcome: 'mode_off'; retryInMs: number }
  | { outcome: 'paused'; retryInMs: number; reason: PauseReason; written: number; dead: number };

/**
 * A transient failure the queue should retry; `attempt` drives the backoff. `minDelayMs` is set
 * after a write whose fate is unknown: a write still in flight at the backend when the next
 * attempt reads the thread to reconcile would land after that read, and be stored twice.
 */
export class RetryableDrainError extends Error {
  readonly minDelayMs: number;
  constructor(
    message: string,
    readonly attempt: number,
    options?: { cause?: unknown; minDelayMs?: number },
  ) {
    super(message, { cause: options?.cause });
    this.minDelayMs = options?.minDelayMs ?? 0;
    this.name = 'RetryableDrainError';
  }
}

/** The backend, not the batch, stopped the write; the batch waits without using an attempt. */
class BackendPaused extends Error {
  constructor(
    readonly waitMs: number,
    readonly reason: PauseReason,
    readonly detail: string,
  ) {
    super(`backend paused (${reason}) for ${waitMs} ms`);
    this.name = 'BackendPaused';
  }
}

const PAUSE_TEXT: Record<PauseReason, string> = {
  rate_limited: 'waiting: the backend is rate limiting',
  breaker_open: 'waiting: the backend is failing (circuit breaker open)',
  auth: 'waiting: the backend rejects the credentials',
};

interface Prepared {
  pending: PendingMessage;
  message: MemoryMessage;
}

/**
 * Drains one thread's outbox into the backend: in accept order, in batches up to the backend's
 * limit, skipping messages the ledger or (after an uncertain outcome) the backend already has, and
 * advancing the outbox only after success. A permanently rejected message is isolated and
 * dead-lettered so the rest of its thread continues behind it.
 */
export function createThreadDrainer(deps: DrainDeps) {
  const { outbox, ledger, backend, metrics, logger, settings } = deps;
  const now = deps.now ?? Date.now;
  const b = backend.name;
  const perCall = backend.maxBatchSize;
  const drainBatch = Math.max(perCall, backend.drainBatchSize ?? perCall);

  /**
   * One backend call through the fleet's gate: it waits out a rate-limit pause, an open breaker or
   * a credential hold by throwing {@link BackendPaused}, and reports the outcome back to the gate.
   */
  async function call<T>(
    op: string,
    fn: (signal: AbortSignal) => Promise<T>,
    seen?: { probe: boolean },
    asked?: Promise<GatePermit>,
  ): Promise<T> {
    const permit = await (asked ?? deps.gate.acquire());
    if (permit.verdict === 'wait') {
      throw new BackendPaused(permit.waitMs, permit.reason, 'held before the call');
    }
    const probe = permit.verdict === 'probe';
    if (seen !== undefined) seen.probe = probe;
    const end = metrics.backendDuration.startTimer({ backend: b, op });
    let result: T;
    try {
      const timeoutMs =
        op === 'add_messages'
          ? (backend.writeTimeoutMs ?? settings.backendTimeoutMs)
          : settings.backendTimeoutMs;
      result = await withTimeout(timeoutMs, undefined, fn);
    } catch (err: unknown) {
      end();
      const e =
        err instanceof BackendError
          ? err
          : new BackendError('transient', toError(err).message, { cause: err });
      metrics.backendRequests.inc({ backend: b, op, outcome: e.kind });
      if (e.kind === 'permanent') {
        // The backend answered: it is up, whatever it thought of the request.
        if (probe && e.details.status !== undefined) await succeeded(true);
        throw e;
      }
      if (e.kind === 'rate_limited') metrics.rateLimited.inc({ backend: b });
      if (e.kind === 'auth') {
        metrics.authRejected.inc({ backend: b });
        // Counted fleet-wide; enough in a row downgrade reads (Flags logs and counts that).
        await deps.flags.recordAuthFailure();
      }
      const verdict = await deps.gate.failure(e.kind, probe, e.details.retryAfterMs);
      if (verdict.counted) throw e;
      if (e.kind === 'rate_limited') {
        metrics.retryAfter.observe({ backend: b }, verdict.waitMs / 1000);
      }
      if (verdict.opened) {
        metrics.breakerTransitions.inc({ backend: b, to: 'open' });
        logger.warn('backend gate closed to writes', {
          backend: b,
          reason: verdict.reason,
          for_ms: verdict.waitMs,
          err: e.message,
        });
      }
      throw new BackendPaused(verdict.waitMs, verdict.reason, e.message);
    }
    end();
    metrics.backendRequests.inc({ backend: b, op, outcome: 'ok' });
    if (probe || permit.dirty) await succeeded(probe);
    return result;
  }

  /** The backend answered after trouble: the gate and the auth failure count start again. */
  async function succeeded(probe: boolean): Promise<void> {
    await deps.flags.recordAuthSuccess();
    await closed(await deps.gate.success(probe));
  }

  async function closed(didClose: boolean): Promise<void> {
    if (!didClose) return;
    metrics.breakerTransitions.inc({ backend: b, to: 'closed' });
    logger.info('backend gate open to writes again', { backend: b });
    await deps.onGateClosed?.();
  }

  /** `begun`: this run counted an attempt on the batch (`beginWrite`) after reading its head. */
  function ledgerEntries(
    thread: ThreadRef,
    batch: readonly PendingMessage[],
    begun: boolean,
  ): LedgerEntry[] {
    return batch.map((p) => ({
      tenant: thread.tenant,
      clientMessageId: p.clientMessageId,
      threadId: thread.threadId,
      userId: thread.userId,
      seq: p.seq,
      attempts: p.attempts + (begun ? 1 : 0),
      acceptedAt: p.acceptedAt,
      body: p.body,
    }));
  }

  const writesOff = (tenant: string, threadId: string): DrainResult | undefined => {
    if (deps.flags.forThread(tenant, threadId).writes) return undefined;
    metrics.drainsPaused.inc({ backend: b, reason: 'mode_off' });
    return { outcome: 'mode_off', retryInMs: settings.modeOffRetryMs };
  };

  return async function drainThread(
    tenant: string,
    threadId: string,
    jobId?: string,
  ): Promise<DrainResult> {
    const job = jobId === undefined ? {} : { jobId };
    // Mode off: the messages stay queued in the outbox, untouched, until writes are back on.
    const off = writesOff(tenant, threadId);
    if (off !== undefined) return off;
    const token = randomUUID();
    let claimed: OutboxHead | undefined = await outbox.claim(
      tenant,
      threadId,
      token,
      settings.lockTtlMs,
      drainBatch,
    );
    if (claimed === undefined) {
      return { outcome: 'locked', retryInMs: await outbox.lockTtlMs(tenant, threadId) };
    }
    let released = false;
    let lockLost = false;
    const renew = setInterval(
      () => {
        outbox
          .extendLock(tenant, threadId, token, settings.lockTtlMs)
          .then((held) => {
            if (!held) lockLost = true;
          })
          .catch((err: unknown) => {
            logger.warn('thread lock renewal failed', { tenant, threadId, err: toError(err) });
          });
      },
      Math.max(50, Math.floor(settings.lockTtlMs / 3)),
    );

    const started = now();
    let written = 0;
    let dead = 0;
    let ensured = false;
    // After a permanent rejection of a batch, messages go one by one until the culprit is found.
    let singles = 0;

    const deadLetter = async (
      thread: ThreadRef,
      batch: readonly PendingMessage[],
      reason: string,
      metricReason: string,
    ): Promise<void> => {
      await ledger.recordDead(ledgerEntries(thread, batch, metricReason !== 'corrupt'), b, reason);
      await outbox.commit(
        tenant,
        threadId,
        token,
        batch.map((p) => p.clientMessageId),
        { status: 'dead', reason },
        now(),
      );
      dead += batch.length;
      metrics.messagesDead.inc({ backend: b, reason: metricReason }, batch.length);
      logger.warn('messages dead-lettered', { tenant, threadId, n: batch.length, reason });
    };

    /**
     * Records messages at the head of the outbox as written, in the ledger then the outbox, and
     * returns the messages left in the outbox. `begun`: as for {@link ledgerEntries}. A `partial`
     * commit ends the drain batch early: the rest stays marked uncertain.
     */
    const commitWritten = async (
      thread: ThreadRef,
      done: readonly PendingMessage[],
      begun: boolean,
      partial: boolean,
    ): Promise<number> => {
      await ledger.recordWritten(ledgerEntries(thread, done, begun), b);
      const left = await outbox.commit(
        tenant,
        threadId,
        token,
        done.map((p) => p.clientMessageId),
        { status: 'written' },
        now(),
        !partial,
        partial,
      );
      written += done.length;
      metrics.messagesWritten.inc({ backend: b }, done.length);
      const t = now();
      for (const p of done) {
        metrics.enqueueToWritten.observe({ backend: b }, (t - p.acceptedAt.getTime()) / 1000);
      }
      return left;
    };

    try {
      for (;;) {
        if (lockLost) throw new RetryableDrainError('thread lock lost', 1);
        const turnedOff = writesOff(tenant, threadId);
        if (turnedOff !== undefined) return turnedOff;
        if (deps.isStopping() || now() - started >= settings.sliceMs) {
          if (await outbox.releaseIfEmpty(tenant, threadId, token)) {
            released = true;
            return { outcome: 'drained', written, dead };
          }
          return { outcome: 'yielded', written, dead };
        }
        const limit = singles > 0 ? 1 : drainBatch;
        const head = claimed ?? (await outbox.readHead(tenant, threadId, limit));
        claimed = undefined;
        if (head.messages.length === 0) {
          // Atomic with the emptiness check: a message appended after it finds the thread free
          // and its drain request mark cleared, so it asks for a drain of its own.
          if (await outbox.releaseIfEmpty(tenant, threadId, token)) {
            released = true;
            return { outcome: 'drained', written, dead };
          }
          continue;
        }
        const thread: ThreadRef = { tenant, threadId, userId: head.userId ?? '' };

        // Corrupt bodies (never produced by the API, but possible in a shared Redis) are isolated.
        const prepared: Prepared[] = [];
        for (const pending of head.messages) {
          const parsed = pending.body === undefined ? undefined : safeParse(pending.body);
          if (parsed === undefined) break;
          prepared.push({ pending, message: toMemoryMessage(pending.clientMessageId, parsed) });
        }
        if (prepared.length === 0 || head.userId === undefined) {
          const first = head.messages[0];
          if (first !== undefined) {
            await deadLetter(thread, [first], 'corrupt message record in the outbox', 'corrupt');
          }
          continue;
        }
        const batch = prepared.map((p) => p.pending);
        const ids = batch.map((p) => p.clientMessageId);

        const inLedger = await ledger.findWritten(tenant, ids, b);
        if (inLedger.size > 0) {
          metrics.duplicatesSkipped.inc({ backend: b, source: 'ledger' }, inLedger.size);
        }
        if (inLedger.size < ids.length) {
          // The gate's permit for this batch's first backend call is asked for with the attempt
          // count, in the same write to Redis; every batch makes that call (below).
          let permit: Promise<GatePermit> | undefined = deps.gate.acquire();
          permit.catch(() => undefined);
          const firstPermit = (): Promise<GatePermit> | undefined => {
            const p = permit;
            permit = undefined;
            return p;
          };
          // Counted before any backend call, so a backend that always fails still exhausts attempts.
          await outbox.beginWrite(tenant, threadId, ids);
          const attempt = Math.max(...batch.map((p) => p.attempts)) + 1;
          let addFailedUncertain = false;
          let toSend: Prepared[] = [];
          // Messages of `toSend` the backend has taken, one call of up to `perCall` at a time.
          let sent = 0;
          try {
            let inBackend = new Set<string>();
            if (head.uncertain) {
              inBackend = await call(
                'find_written',
                (signal) => backend.findWritten(thread, ids, { signal }),
                undefined,
                firstPermit(),
              );
              if (inBackend.size > 0) {
                metrics.duplicatesSkipped.inc({ backend: b, source: 'backend' }, inBackend.size);
              }
            }
            toSend = prepared.filter(
              (p) =>
                !inLedger.has(p.pending.clientMessageId) &&
                !inBackend.has(p.pending.clientMessageId),
            );
            if (toSend.length > 0) {
              if (!ensured && !backend.isEnsured(thread)) {
                await call(
                  'ensure_user',
                  (signal) => backend.ensureUser(thread, { signal }),
                  undefined,
                  firstPermit(),
                );
                await call('ensure_thread', (signal) => backend.ensureThread(thread, { signal }));
              }
              ensured = true;
              const t0 = now();
              const seen = { probe: false };
              while (sent < toSend.length) {
                const chunk = toSend.slice(sent, sent + perCall);
                await call(
                  'add_messages',
                  (signal) =>
                    backend
                      .addMessages(
                        thread,
                        chunk.map((p) => p.message),
                        { signal },
                      )
                      .catch((err: unknown) => {
                        addFailedUncertain = !(
                          err instanceof BackendError &&
                          (err.kind === 'rate_limited' || err.kind === 'auth')
                        );
                        throw err;
                      }),
                  sent === 0 ? seen : undefined,
                  firstPermit(),
                );
                metrics.batchSize.observe({ backend: b }, chunk.length);
                sent += chunk.length;
              }
              logger.info('batch written', {
                ...job,
                thread: threadId,
                tenant,
                backend: b,
                n: toSend.length,
                write_ms: now() - t0,
                attempt,
                breaker: seen.probe ? 'half_open' : 'closed',
                retry_after: null,
              });
            }
          } catch (err: unknown) {
            // The calls before the one that failed wrote their messages: those, and the messages
            // before them the ledger or backend already had, are recorded and committed now, and
            // what follows concerns the rest.
            const unsent = toSend[sent]?.pending;
            const cut = sent > 0 && unsent !== undefined ? batch.indexOf(unsent) : 0;
            if (cut > 0) await commitWritten(thread, batch.slice(0, cut), true, true);
            const failed = batch.slice(cut);
            const failedIds = failed.map((p) => p.clientMessageId);
            if (err instanceof BackendPaused) {
              await outbox.holdWrite(
                tenant,
                threadId,
                failedIds,
                `${PAUSE_TEXT[err.reason]} (${err.detail})`,
                !head.uncertain && !addFailedUncertain,
              );
              metrics.drainsPaused.inc({ backend: b, reason: err.reason });
              metrics.writesSkipped.inc({ backend: b, reason: err.reason }, failedIds.length);
              logger.info('batch held', {
                ...job,
                thread: threadId,
                tenant,
                backend: b,
                n: failedIds.length,
                write_ms: null,
                attempt,
                breaker: err.reason === 'breaker_open' ? 'open' : 'closed',
                retry_after: err.reason === 'rate_limited' ? err.waitMs : null,
                reason: err.reason,
              });
              return {
                outcome: 'paused',
                retryInMs: err.waitMs,
                reason: err.reason,
                written,
                dead,
              };
            }
            const e = toError(err);
            if (err instanceof BackendError && err.kind === 'permanent') {
              if (failed.length > 1) {
                // The messages up to the end of the refused call go one by one.
                const callEnd = toSend[Math.min(sent + perCall, toSend.length) - 1]?.pending;
                singles = callEnd === undefined ? failed.length : failed.indexOf(callEnd) + 1;
                continue;
              }
              await deadLetter(thread, failed, e.message, 'permanent');
              singles = 0;
              continue;
            }
            if (attempt >= settings.maxAttempts) {
              await deadLetter(
                thread,
                failed,
                `gave up after ${attempt} attempts: ${e.message}`,
                'attempts_exhausted',
              );
              continue;
            }
            throw new RetryableDrainError(e.message, attempt, {
              cause: err,
              minDelayMs: addFailedUncertain ? settings.backendTimeoutMs : 0,
            });
          }
        }

        const left = await commitWritten(thread, batch, inLedger.size < ids.length, false);
        if (singles > 0) singles -= batch.length;
        if (left === 0) {
          // The commit released the lock with the outbox empty: nothing more to read.
          released = true;
          return { outcome: 'drained', written, dead };
        }
      }
    } finally {
      clearInterval(renew);
      if (!released) {
        await outbox.releaseLock(tenant, threadId, token).catch((err: unknown) => {
          logger.warn('thread lock release failed', { tenant, threadId, err: toError(err) });
        });
      }
    }
  };
}

function safeParse(body: string) {
  try {
    const result = outboxMessageBody.safeParse(JSON.parse(body));
    return result.success ? result.data : undefined;
  } catch {
    return undefined;
  }
}

function toMemoryMessage(
  clientMessageId: string,
  body: NonNullable<ReturnType<typeof safeParse>>,
): MemoryMessage {
  return {
    clientMessageId,
    role: body.role,
    content: body.content,
    ...(body.name !== undefined ? { name: body.name } : {}),
    createdAt: body.created_at,
    metadata: body.metadata,
  };
}
