import { z } from 'zod';

/**
 * The stored body of an accepted message (already redacted), written by the API into the outbox and
 * read by the worker. Parsed again on the worker side: a body that does not match is dead-lettered
 * as corrupt instead of crashing the drain.
 */
export const outboxMessageBody = z.object({
  role: z.enum(['user', 'assistant', 'system', 'tool']),
  content: z.string(),
  name: z.string().optional(),
  created_at: z.iso.datetime({ offset: true }),
  metadata: z.record(z.string(), z.unknown()),
});
export type OutboxMessageBody = z.infer<typeof outboxMessageBody>;
