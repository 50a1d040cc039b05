import type { OutboxMessageBody } from '@memfleet/jobs/outbox-message';
import { requestDrain, type DrainQueue } from '@memfleet/jobs/thread-drain';
import type { Outbox } from '@memfleet/outbox/outbox';
import { redact, type RedactionCounts, type RedactOptions } from '@memfleet/redaction/redact';
import { redactDeep } from '@memfleet/redaction/redact-deep';
import { HttpError } from '@memfleet/http/http-error';
import type { MessagesRequest } from './message-request.ts';

/** A counter the intake adds to; prom-client's `Counter` is one. */
export interface IntakeCounter<L extends string> {
  inc(labels: Partial<Record<L, string>>, value: number): void;
}

/**
 * What the intake counts: accepted messages by outcome (`queued`, `duplicate`) and PII replaced,
 * by type (`email`, `phone`, `card`). The API passes its Prometheus counters; other callers may
 * pass their own or none.
 */
export interface IntakeMetrics {
  messagesAccepted: IntakeCounter<'outcome'>;
  redactions: IntakeCounter<'type'>;
}

/** Dependencies of {@link createMessageIntake}. */
export interface IntakeDeps {
  outbox: Outbox;
  queue: DrainQueue;
  /** Counters to add to. Default: none. */
  metrics?: IntakeMetrics;
  /** Region of phone numbers written without `+` (`REDACTION_DEFAULT_COUNTRY`). */
  defaultCountry: NonNullable<RedactOptions['defaultCountry']>;
  /** Clock in ms, the accept time of each call. Default `Date.now`. */
  now?: () => number;
}

/** Intake function made by {@link createMessageIntake}. */
export type AcceptMessages = (
  tenant: string,
  threadId: string,
  request: MessagesRequest,
) => Promise<AcceptResult>;

/** Per-message outcome of an accepted request. */
export interface AcceptResult {
  thread_id: string;
  results: { client_message_id: string; status: 'queued' | 'duplicate' }[];
}

/**
 * Accepts messages for a thread: redacts PII (content, name and metadata strings) before anything
 * reaches Redis, records each new client message id once in the thread's outbox in accept order,
 * and asks the fleet to drain the thread. The request must already be valid
 * (`messagesRequestSchema`). A thread owned by another user throws a 409 `HttpError`
 * (`thread_owner_mismatch`) and records nothing.
 */
export function createMessageIntake(deps: IntakeDeps): AcceptMessages {
  const now = deps.now ?? Date.now;
  const options = { defaultCountry: deps.defaultCountry };
  const { metrics } = deps;

  return async function acceptMessages(tenant, threadId, request) {
    const acceptedAt = now();
    let acceptedIso: string | undefined;
    const totals: RedactionCounts = { email: 0, phone: 0, card: 0 };
    const add = (c: RedactionCounts): void => {
      totals.email += c.email;
      totals.phone += c.phone;
      totals.card += c.card;
    };
    const inputs = request.messages.map((m) => {
      const content = redact(m.content, options);
      add(content.counts);
      const name = m.name === undefined ? undefined : redact(m.name, options);
      if (name !== undefined) add(name.counts);
      const metadata = redactDeep(m.metadata ?? {}, options);
      add(metadata.counts);
      const body: OutboxMessageBody = {
        role: m.role,
        content: content.text,
        ...(name !== undefined ? { name: name.text } : {}),
        created_at: m.created_at ?? (acceptedIso ??= new Date(acceptedAt).toISOString()),
        metadata: metadata.value as Record<string, unknown>,
      };
      return { clientMessageId: m.client_message_id, body: JSON.stringify(body) };
    });

    const appended = await deps.outbox.append(
      tenant,
      threadId,
      request.user_id,
      inputs,
      acceptedAt,
    );
    if (!appended.ok) {
      throw new HttpError(
        409,
        'thread_owner_mismatch',
        `user_id: thread ${threadId} belongs to another user`,
      );
    }
    for (const type of ['email', 'phone', 'card'] as const) {
      if (totals[type] > 0) metrics?.redactions.inc({ type }, totals[type]);
    }
    const queued = appended.results.filter((r) => r === 'queued').length;
    if (queued > 0) {
      metrics?.messagesAccepted.inc({ outcome: 'queued' }, queued);
      if (appended.drainNeeded) await requestDrain(deps.queue, tenant, threadId);
    }
    if (queued < appended.results.length) {
      metrics?.messagesAccepted.inc({ outcome: 'duplicate' }, appended.results.length - queued);
    }
    return {
      thread_id: threadId,
      results: inputs.map((m, i) => ({
        client_message_id: m.clientMessageId,
        status: appended.results[i] ?? 'duplicate',
      })),
    };
  };
}
