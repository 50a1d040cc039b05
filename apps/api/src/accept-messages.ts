import type { OutboxMessageBody } from '@memfleet/jobs/outbox-message';
import { requestDrain, type DrainQueue } from '@memfleet/jobs/thread-drain';
import type { ApiMetrics } from '@memfleet/metrics/api-metrics';
import type { Outbox } from '@memfleet/outbox/outbox';
import { redact, type RedactionCounts, type RedactOptions } from '@memfleet/redaction/redact';
import { redactDeep } from '@memfleet/redaction/redact-deep';
import { HttpError } from '@memfleet/http/http-error';
import type { MessagesRequest } from './message-request.ts';

/** Dependencies of {@link createMessageIntake}. */
export interface IntakeDeps {
  outbox: Outbox;
  queue: DrainQueue;
  metrics: ApiMetrics;
  defaultCountry: NonNullable<RedactOptions['defaultCountry']>;
  now?: () => number;
}

/** Per-message outcome of an accepted request. */
export interface AcceptResult {
  thread_id: string;
  results: { client_message_id: string; status: 'queued' | 'duplicate' }[];
}

/**
 * Accepts messages for a thread: redacts PII (content, name and metadata strings) before anything
 * reaches Redis, records each new client message id once in the thread's outbox in accept order,
 * and asks the fleet to drain the thread.
 */
export function createMessageIntake(deps: IntakeDeps) {
  const now = deps.now ?? Date.now;
  const options = { defaultCountry: deps.defaultCountry };

  return async function acceptMessages(
    tenant: string,
    threadId: string,
    request: MessagesRequest,
  ): Promise<AcceptResult> {
    const acceptedAt = now();
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
        created_at: m.created_at ?? new Date(acceptedAt).toISOString(),
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
      if (totals[type] > 0) deps.metrics.redactions.inc({ type }, totals[type]);
    }
    const queued = appended.results.filter((r) => r === 'queued').length;
    if (queued > 0) {
      deps.metrics.messagesAccepted.inc({ outcome: 'queued' }, queued);
      await requestDrain(deps.queue, tenant, threadId);
    }
    if (queued < appended.results.length) {
      deps.metrics.messagesAccepted.inc({ outcome: 'duplicate' }, appended.results.length - queued);
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
