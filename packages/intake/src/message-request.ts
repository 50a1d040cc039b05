import { z } from 'zod';
import { boundedId as id, idSchema } from '@memfleet/http/ids';

const METADATA_MAX_BYTES = 16 * 1024;
/** Most messages in one request. */
export const MAX_MESSAGES_PER_REQUEST = 100;

/** One message of a {@link MessagesRequest}, with the content limit from config. */
export function messageSchema(contentMaxChars: number) {
  return z
    .object({
      client_message_id: idSchema,
      role: z.enum(['user', 'assistant', 'system', 'tool']),
      content: z
        .string()
        .max(contentMaxChars, `must be at most ${contentMaxChars} characters`)
        .refine((v) => v.trim().length > 0, 'must not be empty'),
      name: id(256).optional(),
      created_at: z.iso
        .datetime({ offset: true, error: 'must be an ISO-8601 date-time' })
        .optional(),
      metadata: z
        .record(z.string().max(128), z.unknown())
        .refine(
          (v) => Buffer.byteLength(JSON.stringify(v)) <= METADATA_MAX_BYTES,
          `must be at most ${METADATA_MAX_BYTES} bytes as JSON`,
        )
        .optional(),
    })
    .strict();
}

/** Body of `POST /v1/threads/{thread_id}/messages`, with the content limit from config. */
export function messagesRequestSchema(contentMaxChars: number) {
  return z
    .object({
      user_id: idSchema,
      messages: z
        .array(messageSchema(contentMaxChars))
        .min(1, 'must hold at least 1 message')
        .max(MAX_MESSAGES_PER_REQUEST, `must hold at most ${MAX_MESSAGES_PER_REQUEST} messages`),
    })
    .strict();
}
export type MessagesRequest = z.infer<ReturnType<typeof messagesRequestSchema>>;

/** One line naming the first bad field, e.g. `messages[0].role: Invalid option ...`. */
export function describeIssues(error: z.ZodError): { message: string; fields: string[] } {
  const fields = error.issues.map((i) => {
    const path = i.path
      .map((p, n) => (typeof p === 'number' ? `[${p}]` : n === 0 ? String(p) : `.${String(p)}`))
      .join('');
    const keys = i.code === 'unrecognized_keys' ? ` (${i.keys.join(', ')})` : '';
    return `${path === '' ? 'body' : path}: ${i.message}${keys}`;
  });
  return { message: fields[0] ?? 'invalid request', fields };
}
