import { z } from 'zod';
import { idSchema, printableText } from '@memfleet/http/ids';

const METADATA_MAX_BYTES = 16 * 1024;
/**
 * Deepest nesting of objects and arrays inside `metadata` (the object itself is level 0): what
 * redaction walks (`redactDeep` replaces anything deeper with `[Truncated]`).
 */
const METADATA_MAX_DEPTH = 20;
/** Metadata keys that would set or shadow an object's prototype when copied. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
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
      name: printableText(256).optional(),
      created_at: z.iso
        .datetime({ offset: true, error: 'must be an ISO-8601 date-time' })
        .optional(),
      metadata: z
        .unknown()
        // Checked on the body as parsed, without recursion: JSON.stringify of a deeply nested
        // value would overflow the stack, and the record below drops a `__proto__` key silently.
        .superRefine((v, ctx) => {
          const problem = rawMetadataProblem(v);
          if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
        })
        .pipe(
          z
            .record(z.string().max(128), z.unknown())
            .refine(
              (v) => Buffer.byteLength(JSON.stringify(v)) <= METADATA_MAX_BYTES,
              `must be at most ${METADATA_MAX_BYTES} bytes as JSON`,
            ),
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

/**
 * What is wrong with `value` as metadata before it is copied: objects or arrays nested more than
 * {@link METADATA_MAX_DEPTH} levels below it, or a key in {@link PROTOTYPE_KEYS} at any level.
 */
function rawMetadataProblem(value: unknown): string | undefined {
  const stack: [unknown, number][] = [[value, 0]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [v, depth] = top;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > METADATA_MAX_DEPTH) {
      return `must be nested at most ${METADATA_MAX_DEPTH} levels deep`;
    }
    for (const key of Object.keys(v)) {
      if (!Array.isArray(v) && PROTOTYPE_KEYS.has(key)) {
        return `must not hold the key ${key} at any level`;
      }
      stack.push([(v as Record<string, unknown>)[key], depth + 1]);
    }
  }
  return undefined;
}
