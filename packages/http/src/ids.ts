import { z } from 'zod';
import { HttpError } from './http-error.ts';

// Ids travel into Redis keys, backend ids and logs: printable, bounded, no control characters.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

// An email address, or a phone number written with its international `+` prefix. Bare digit runs
// are left alone: they cannot be told apart from numeric ids.
const EMAIL_IN_ID = /[^\s@]+@[^\s@]+\.[A-Za-z]{2,}/;
const PHONE_IN_ID = /\+\d[\d\s().-]{5,}\d/;

/**
 * Whether an id holds contact details. Ids travel unredacted (they are keys: in Redis, job data,
 * the ledger and the backend), so an id holding an email or phone number is refused instead.
 */
export const holdsContactData = (id: string): boolean =>
  EMAIL_IN_ID.test(id) || PHONE_IN_ID.test(id);

/** A bounded, printable string of at most `max` characters (a name; redacted, not refused). */
export const printableText = (max: number) =>
  z
    .string()
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`)
    .refine((v) => !CONTROL.test(v), 'must not contain control characters');

/** A bounded, printable id of at most `max` characters, free of contact details. */
export const boundedId = (max: number) =>
  printableText(max).refine(
    (v) => !holdsContactData(v),
    'must not hold an email address or phone number (ids are stored as they are): use an opaque id',
  );

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
