import { createHash } from 'node:crypto';
import { z } from 'zod';
import { TENANT_RE } from '@memfleet/config/load-config';
import { idSchema } from '@memfleet/http/ids';
import { messageSchema } from '@memfleet/intake/message-request';
import type { OutboxMessageBody } from '@memfleet/jobs/outbox-message';
import { redact, type RedactOptions } from '@memfleet/redaction/redact';
import { redactDeep } from '@memfleet/redaction/redact-deep';

/** The memory backends a backfill can target (`--to`). */
export const BACKFILL_TARGETS = ['postgres', 'zep', 'mem0'] as const;
export type BackfillTarget = (typeof BACKFILL_TARGETS)[number];

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000 } as const;

/**
 * `--since`: a duration back from `nowMs` (`30d`, `12h`, `90m`) or an ISO date (`2026-11-01`, at
 * 00:00 UTC) or date-time with an offset. Throws a message naming `--since` otherwise.
 */
export function parseSince(raw: string, nowMs: number): Date {
  const value = raw.trim();
  const duration = /^(\d{1,6})([dhm])$/.exec(value);
  if (duration !== null) {
    const n = Number(duration[1]);
    if (n === 0) throw new Error('--since: a duration must be more than 0');
    return new Date(nowMs - n * UNIT_MS[duration[2] as keyof typeof UNIT_MS]);
  }
  let date: Date | undefined;
  if (z.iso.date().safeParse(value).success) date = new Date(`${value}T00:00:00Z`);
  else if (z.iso.datetime({ offset: true }).safeParse(value).success) date = new Date(value);
  if (date === undefined || Number.isNaN(date.getTime())) {
    throw new Error(
      `--since: expected a duration (30d, 12h, 90m) or an ISO date (2026-11-01, 2026-11-01T08:00:00Z), got "${raw}"`,
    );
  }
  if (date.getTime() > nowMs) throw new Error(`--since: ${value} is in the future`);
  return date;
}

/** A rate of `--rate`: `count` messages per second or per minute. */
export interface Rate {
  count: number;
  unit: 's' | 'm';
  perSecond: number;
}

/** `--rate`: `200/s` or `600/m` (a whole number, at most 100000). */
export function parseRate(raw: string): Rate {
  const m = /^(\d{1,6})\/(s|m)$/.exec(raw.trim());
  const count = m === null ? NaN : Number(m[1]);
  if (m === null || !(count >= 1 && count <= 100_000)) {
    throw new Error(
      `--rate: expected messages per second or minute, 1 to 100000, such as 200/s or 600/m, got "${raw}"`,
    );
  }
  const unit = m[2] === 'm' ? 'm' : 's';
  return { count, unit, perSecond: unit === 's' ? count : count / 60 };
}

/** `--tenant`: a tenant name as `MEMFLEET_API_KEYS` spells it. */
export function parseTenant(raw: string): string {
  if (!TENANT_RE.test(raw)) {
    throw new Error(`--tenant: "${raw}" is not a tenant name (lowercase letters, digits, _ and -)`);
  }
  return raw;
}

/** `--name`: names the stored cursor. */
export function parseCursorName(raw: string): string {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(raw)) {
    throw new Error('--name: 1 to 64 letters, digits, ".", "_" or "-"');
  }
  return raw;
}

/** The default cursor name: a hash of what the backfill reads and where it writes. */
export function defaultCursorName(parts: {
  source: string;
  since: string | undefined;
  tenants: readonly string[] | undefined;
  to: string;
}): string {
  const key = JSON.stringify([
    parts.source,
    parts.since ?? '',
    parts.tenants === undefined ? '*' : [...new Set(parts.tenants)].sort(),
    parts.to,
  ]);
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** One line of a backfill file: a message with its tenant, thread and user. */
export function backfillLineSchema(contentMaxChars: number) {
  return messageSchema(contentMaxChars).extend({
    tenant: z
      .string()
      .regex(TENANT_RE, 'must be a tenant name (lowercase letters, digits, _ and -)'),
    thread_id: idSchema,
    user_id: idSchema,
    created_at: z.iso.datetime({ offset: true, error: 'must be an ISO-8601 date-time' }),
  });
}
export type BackfillLine = z.infer<ReturnType<typeof backfillLineSchema>>;

/** A parsed line, or why it was rejected (`field: problem`). */
export type LineResult = { ok: true; line: BackfillLine } | { ok: false; error: string };

/** Parses and validates one non-blank line of a backfill file. */
export function parseBackfillLine(
  text: string,
  schema: ReturnType<typeof backfillLineSchema>,
): LineResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: 'not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: 'must be a JSON object' };
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, line: parsed.data };
  const issue = parsed.error.issues[0];
  if (issue === undefined) return { ok: false, error: 'invalid' };
  if (issue.code === 'unrecognized_keys') {
    return { ok: false, error: `${issue.keys.join(', ')}: unknown field` };
  }
  const field = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.');
  const missing =
    issue.code === 'invalid_type' && !(issue.path[0] !== undefined && issue.path[0] in value);
  return {
    ok: false,
    error: `${field === '' ? 'line' : field}: ${missing ? 'required' : issue.message}`,
  };
}

/**
 * The outbox body of a backfill line, redacted exactly as the API redacts a message: `content` and
 * `name` through `redact`, every string of `metadata` through `redactDeep`.
 */
export function redactedBody(
  line: BackfillLine,
  defaultCountry: NonNullable<RedactOptions['defaultCountry']>,
): string {
  const options = { defaultCountry };
  const body: OutboxMessageBody = {
    role: line.role,
    content: redact(line.content, options).text,
    ...(line.name !== undefined ? { name: redact(line.name, options).text } : {}),
    created_at: line.created_at,
    metadata: redactDeep(line.metadata ?? {}, options).value as Record<string, unknown>,
  };
  return JSON.stringify(body);
}
