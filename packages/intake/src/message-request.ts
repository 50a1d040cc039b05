import { z } from 'zod';
import { boundedId as id, idSchema } from '@memfleet/http/ids';

const METADATA_MAX_BYTES = 16 * 1024;
/**
 * Deepest nesting of objects and arrays inside `metadata` (the object itself is level 0): what
 * redaction walks (`redactDeep` replaces anything deeper with `[Truncated]`).
 */
const METADATA_MAX_DEPTH = 20;
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
        .superRefine((v, ctx) => {
          // Checked first and without recursion: JSON.stringify of a deeply nested body would
          // overflow the stack.
          if (nestedDeeperThan(v, METADATA_MAX_DEPTH)) {
            ctx.addIssue({
              code: 'custom',
              message: `must be nested at most ${METADATA_MAX_DEPTH} levels deep`,
            });
          } else if (Buffer.byteLength(JSON.stringify(v)) > METADATA_MAX_BYTES) {
            ctx.addIssue({
              code: 'custom',
              message: `must be at most ${METADATA_MAX_BYTES} bytes as JSON`,
            });
          }
        })
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

/** Whether an object or array sits more than `max` levels below `value`, found without recursion. */
function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [v, depth] = top;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}
