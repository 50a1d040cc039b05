import { z } from 'zod';
import { HttpError } from './http-error.ts';

// Ids travel into Redis keys, backend ids and logs: printable, bounded, no control characters.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A bounded, printable id of at most `max` characters. */
export const boundedId = (max: number) =>
  z
    .string()
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`)
    .refine((v) => !CONTROL.test(v), 'must not contain control characters');

/** Ids in paths, queries and bodies. */
export const idSchema = boundedId(256);

/** Parses an id from a path or query, or throws a 400 naming `field`. */
export function parseId(value: unknown, field: string): string {
  const parsed = idSchema.safeParse(value);
  if (!parsed.success) {
    throw new HttpError(
      400,
      'invalid_request',
      `${field}: ${value === undefined ? 'required' : (parsed.error.issues[0]?.message ?? 'invalid')}`,
    );
  }
  return parsed.data;
}
