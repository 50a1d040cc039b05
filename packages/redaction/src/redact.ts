// libphonenumber's ES2015+ build, with the `max` metadata: the same code as the package's default
// export without Babel's helpers for classes and object spread, which took about a quarter of the
// matcher's time.
import { PhoneNumberMatcher, type CountryCode, type PhoneNumber } from 'libphonenumber-js/max/es6';

/** The kinds of personal data {@link redact} replaces. */
export type PiiType = 'email' | 'phone' | 'card';

/** How many values of each {@link PiiType} were replaced. */
export interface RedactionCounts {
  email: number;
  phone: number;
  card: number;
}

/** Options of {@link redact}. */
export interface RedactOptions {
  /**
   * Country whose national phone formats (no `+` prefix) are recognised, e.g. `(415) 555-2671`
   * for `'US'`. International numbers (`+44 20 7946 0958`) are found whatever this is.
   * @defaultValue `'US'`
   */
  defaultCountry?: CountryCode;
}

const PLACEHOLDER: Readonly<Record<PiiType, string>> = {
  email: '[EMAIL]',
  phone: '[PHONE]',
  card: '[CARD]',
};

const DEFAULT_COUNTRY: CountryCode = 'US';

/** The shortest card number (13 digits) and the shortest phone number worth looking for. */
const MIN_CARD_DIGITS = 13;
const MAX_CARD_DIGITS = 19;
const MIN_PHONE_DIGITS = 7;

/**
 * Digit runs that may hold a card: at least 13 digits, each optionally separated from the next by
 * one space or dash. Greedy from the first digit of a run, so a match is always a whole run.
 */
const CARD_RUN_RE = /\d(?:[ -]?\d){12,}/g;

/**
 * Digit runs that may hold a phone number: an optional `+` or `(`, then digits separated by up to
 * four of the punctuation characters libphonenumber accepts inside a number.
 */
const PHONE_CANDIDATE_RE =
  /[+(\uFF08\uFF0B]?\d(?:[\s\-./()[\]~\u00AD\u2010-\u2015\u2212\u30FC\uFF0D\uFF0F\uFF08\uFF09\u2060\u200B]{0,4}\d)*/g;

/**
 * Whole dates and IPv4 addresses: by far the most common digit-heavy runs in chat and never phone
 * numbers, so they are skipped without asking libphonenumber.
 */
const NOT_A_PHONE_RE =
  /^(?:\d{4}([-/.])\d{1,2}\1\d{1,2}|\d{1,2}([-/.])\d{1,2}\2\d{2,4}|\d{1,3}(?:\.\d{1,3}){3})$/;

const WORD_RE = /\S+/g;

/** Enough characters after a number to include an extension such as " ext. 12345". */
const EXTENSION_LOOKAHEAD = 16;

/** Everything after the `@`: dot-separated labels and an alphabetic (or punycode) TLD. */
const EMAIL_DOMAIN_RE =
  /(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)+(?:\p{L}{2,63}|xn--[a-z0-9-]{1,59})/uy;

const EMAIL_LOCAL_CHAR_RE = /[\p{L}\p{N}]/u;

const LATIN_WORD_CHAR_RE = /[\p{Script=Latin}\p{N}]/u;

/** A comma and a space at the end of a number, before what libphonenumber took as its extension. */
const LIST_COMMA_RE = /,\s+$/;

/**
 * The longest run of text (four phone numbers or so) that {@link scanPhoneSpan} looks at again
 * when libphonenumber's answer leaves some of it unread: every look is another call, and its cost
 * grows with the length of the run.
 */
const MAX_RESCAN_CHARS = 80;

/** Digits after a span that libphonenumber may have read as more of a number or its extension. */
const DIGITS_AHEAD_RE = /^[^\p{L}\d]*(?:(?:x|ext|extn|extension)[^\p{L}\d]*)?\d/iu;

/** A trailing group of digits (a count, an amount, a trunk prefix) and the space before it. */
const TRAILING_GROUP_RE = /\s+\d+\s*$/;

/** Separator groups of a national phone number that look like a real phone grouping. */
const SHORT_GROUPS_RE = /^\d{2,4}$/;

/**
 * Replaces email addresses, phone numbers and payment card numbers in `text` with `[EMAIL]`,
 * `[PHONE]` and `[CARD]`.
 *
 * Cards are replaced first, then emails, then phones, so that no value is half-replaced by a
 * later, looser detector. Look-alikes (prices, dates, times, order numbers, versions, IPs) are
 * kept. Returns the input string itself when nothing was found.
 */
export function redact(
  text: string,
  options?: RedactOptions,
): { text: string; counts: RedactionCounts } {
  const counts: RedactionCounts = { email: 0, phone: 0, card: 0 };
  // "a@b.io" is the shortest thing worth looking at.
  if (text.length < 6) return { text, counts };

  let out = text;
  const digits = countDigits(text, MIN_CARD_DIGITS);
  if (digits >= MIN_CARD_DIGITS) out = redactCards(out, counts);
  if (out.includes('@')) out = redactEmails(out, counts);
  if (digits >= MIN_PHONE_DIGITS) {
    out = redactPhones(out, options?.defaultCountry ?? DEFAULT_COUNTRY, counts);
  }
  return { text: out, counts };
}

/** Counts ASCII digits, stopping early at `cap` since callers only compare with thresholds. */
function countDigits(text: string, cap: number): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57 && ++n >= cap) return n;
  }
  return n;
}

function isDigitAt(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  return c >= 48 && c <= 57;
}

/**
 * Letters, digits and `_` of Latin-script text. Other scripts are excluded on purpose: Chinese or
 * Japanese text puts numbers right after words without a space ("電話4155552671").
 */
function isWordAt(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  if (Number.isNaN(c)) return false;
  if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95) {
    return true;
  }
  return c > 127 && LATIN_WORD_CHAR_RE.test(text.charAt(i));
}

function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

function redactCards(text: string, counts: RedactionCounts): string {
  let out = '';
  let last = 0;
  CARD_RUN_RE.lastIndex = 0;
  for (let m = CARD_RUN_RE.exec(text); m !== null; m = CARD_RUN_RE.exec(text)) {
    let start = m.index;
    let end = start + m[0].length;
    // A leading "+" makes it an international phone number.
    if (text[start - 1] === '+') continue;
    // A neighbouring "1,2" / "3.4" makes the group next to it part of a decimal or
    // thousands-separated amount (or of a dotted phone number); the rest of the run may still
    // hold a card ("4111111111111111 212.555.0100").
    if (isSeparatorOfNumber(text, start - 1) && isDigitAt(text, start - 2)) {
      while (start < end && isDigitAt(text, start)) start++;
      start++;
    }
    if (isSeparatorOfNumber(text, end) && isDigitAt(text, end + 1)) {
      while (end > start && isDigitAt(text, end - 1)) end--;
      end--;
    }
    if (end - start < MIN_CARD_DIGITS) continue;
    for (const [s, e] of cardSpans(text.slice(start, end))) {
      out += text.slice(last, start + s) + PLACEHOLDER.card;
      last = start + e;
      counts.card++;
    }
  }
  if (last === 0) return text;
  return out + text.slice(last);
}

function isSeparatorOfNumber(text: string, i: number): boolean {
  const ch = text[i];
  return ch === '.' || ch === ',';
}

/**
 * Card spans (offsets into `run`). A card may sit next to unrelated numbers
 * ("qty 2 4111 1111 1111 1111"), so every sequence of consecutive groups is tried, but only when
 * it is grouped the way cards are printed (a first group of 4, then groups of 3–6, all separated
 * alike) or forms one unbroken 13–19 digit group, and is not joined by a dash to a group outside
 * it. Anything looser would turn lists of small numbers, dates next to an order number
 * ("order 422340 2089-07-24") or phone numbers written back to back ("(212) 220-4786 415-935-8930")
 * into false positives.
 */
function cardSpans(run: string): [number, number][] {
  const groups: { start: number; end: number }[] = [];
  for (let i = 0; i < run.length;) {
    let j = i;
    while (j < run.length && isDigitAt(run, j)) j++;
    groups.push({ start: i, end: j });
    i = j + 1;
  }
  const spans: [number, number][] = [];
  for (let i = 0; i < groups.length;) {
    const found = longestCardFrom(run, groups, i);
    if (found === undefined) {
      i++;
      continue;
    }
    const first = groups[i];
    const lastGroup = groups[found];
    if (first && lastGroup) spans.push([first.start, lastGroup.end]);
    i = found + 1;
  }
  return spans;
}

/** Index of the last group of the longest card-shaped sequence starting at group `i`. */
function longestCardFrom(
  run: string,
  groups: readonly { start: number; end: number }[],
  i: number,
): number | undefined {
  const first = groups[i];
  // A dash joins the groups on either side into one number, so no card starts or ends there.
  if (!first || run[first.start - 1] === '-') return undefined;
  const firstLen = first.end - first.start;
  if (firstLen >= MIN_CARD_DIGITS && firstLen <= MAX_CARD_DIGITS) {
    return run[first.end] !== '-' && luhnValid(run.slice(first.start, first.end)) ? i : undefined;
  }
  if (firstLen !== 4) return undefined;

  // Cards are printed with one separator throughout; "4704 512-235-0580" is a number and a phone.
  const separator = run[first.end];
  let digits = run.slice(first.start, first.end);
  let best: number | undefined;
  for (let j = i + 1; j < groups.length; j++) {
    const g = groups[j];
    if (!g) break;
    const len = g.end - g.start;
    if (len < 3 || len > 6 || run[g.start - 1] !== separator) break;
    digits += run.slice(g.start, g.end);
    if (digits.length > MAX_CARD_DIGITS) break;
    if (digits.length >= MIN_CARD_DIGITS && run[g.end] !== '-' && luhnValid(digits)) best = j;
  }
  return best;
}

function isEmailLocalCharAt(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  if (Number.isNaN(c)) return false;
  if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)) return true;
  // . _ % + -
  if (c === 46 || c === 95 || c === 37 || c === 43 || c === 45) return true;
  return c > 127 && EMAIL_LOCAL_CHAR_RE.test(text.charAt(i));
}

/**
 * Scans outwards from each `@` instead of running one big regex over the text: the regex engine
 * would try a local part at every word start, while `@` is rare in chat text.
 */
function redactEmails(text: string, counts: RedactionCounts): string {
  let out = '';
  let last = 0;
  for (let at = text.indexOf('@'); at !== -1; at = text.indexOf('@', at + 1)) {
    let start = at;
    while (start > last && isEmailLocalCharAt(text, start - 1)) start--;
    // A sentence's dots before the address are punctuation, not part of the local part.
    while (start < at && text[start] === '.') start++;
    if (start === at) continue;

    EMAIL_DOMAIN_RE.lastIndex = at + 1;
    const domain = EMAIL_DOMAIN_RE.exec(text);
    if (domain === null) continue;

    const end = at + 1 + domain[0].length;
    out += text.slice(last, start) + PLACEHOLDER.email;
    last = end;
    counts.email++;
    at = end - 1;
  }
  if (last === 0) return text;
  return out + text.slice(last);
}

/** Where {@link redactPhones} has copied `text` up to, and the redacted output so far. */
interface PhoneScan {
  readonly text: string;
  readonly defaultCountry: CountryCode;
  readonly counts: RedactionCounts;
  out: string;
  last: number;
}

/**
 * libphonenumber's matcher costs about 3 µs a call on a window holding one number, and more the
 * longer the text, so it only sees small windows around digit runs that could be phone numbers,
 * never whole messages.
 */
function redactPhones(text: string, defaultCountry: CountryCode, counts: RedactionCounts): string {
  const scan: PhoneScan = { text, defaultCountry, counts, out: '', last: 0 };
  PHONE_CANDIDATE_RE.lastIndex = 0;
  for (let m = PHONE_CANDIDATE_RE.exec(text); m !== null; m = PHONE_CANDIDATE_RE.exec(text)) {
    const candidate = m[0];
    if (countDigits(candidate, MIN_PHONE_DIGITS) < MIN_PHONE_DIGITS) continue;
    if (!/\s/.test(candidate)) {
      if (!NOT_A_PHONE_RE.test(candidate)) scanPhoneSpan(scan, m.index, m.index + candidate.length);
    } else {
      // Split at dates and IPs ("2024-05-01 10:30", "from 2024-05-01 2024-05-07") so that runs of
      // them never reach libphonenumber as one long candidate.
      let spanStart = -1;
      let spanEnd = -1;
      WORD_RE.lastIndex = 0;
      for (let w = WORD_RE.exec(candidate); w !== null; w = WORD_RE.exec(candidate)) {
        if (NOT_A_PHONE_RE.test(w[0])) {
          if (spanStart >= 0) scanPhoneSpan(scan, m.index + spanStart, m.index + spanEnd);
          spanStart = -1;
        } else {
          if (spanStart < 0) spanStart = w.index;
          spanEnd = w.index + w[0].length;
        }
      }
      if (spanStart >= 0) scanPhoneSpan(scan, m.index + spanStart, m.index + spanEnd);
    }
    if (scan.last > PHONE_CANDIDATE_RE.lastIndex) PHONE_CANDIDATE_RE.lastIndex = scan.last;
  }
  if (scan.last === 0) return text;
  return scan.out + text.slice(scan.last);
}

/**
 * Redacts the numbers libphonenumber finds in `text[start, end)` (plus one character before it and
 * the text up to `winEnd`). libphonenumber drops a number that runs on into something it cannot
 * parse: an "extension" glued to a word or date ("… x 2BR", "… 1990-01-01"), a count, an amount or
 * the next number's trunk prefix ("(212) 220-0000 2 times", "+1 212 220 0000 1 (212) 220-0001").
 * So when it finds none in a span of up to {@link MAX_RESCAN_CHARS}, this looks once more at the
 * span alone, then without a trailing group of digits; and when it finds some, at what follows the
 * last one.
 */
function scanPhoneSpan(
  scan: PhoneScan,
  start: number,
  end: number,
  winEnd = Math.min(scan.text.length, end + EXTENSION_LOOKAHEAD),
): void {
  const { text } = scan;
  if (start < scan.last) return;
  if (end - start < MIN_PHONE_DIGITS) return;
  const span = text.slice(start, end);
  if (countDigits(span, MIN_PHONE_DIGITS) < MIN_PHONE_DIGITS) return;
  // The tail of an identifier ("ORD-2024-000123", "#12345678"): any number libphonenumber finds
  // in it would be rejected below as glued to the preceding character, so skip the call.
  if (isGluedBefore(text, start) && !/\s/.test(span)) return;

  const last = scan.last;
  searchWindow(scan, start, end, winEnd);
  if (end - start > MAX_RESCAN_CHARS) return;
  if (scan.last === last && DIGITS_AHEAD_RE.test(text.slice(end, winEnd))) {
    searchWindow(scan, start, end, end);
  }
  if (scan.last !== last) {
    // What follows the last number found may hold more that libphonenumber gave up on.
    if (scan.last < end) scanPhoneSpan(scan, scan.last, end, winEnd);
    return;
  }
  const trailing = TRAILING_GROUP_RE.exec(span);
  if (trailing === null) return;
  const cut = start + trailing.index;
  if (countDigits(text.slice(start, cut), MIN_PHONE_DIGITS) < MIN_PHONE_DIGITS) return;
  searchWindow(scan, start, cut, cut);
}

/** One libphonenumber call on `text[start - 1, winEnd)`, for numbers starting before `end`. */
function searchWindow(scan: PhoneScan, start: number, end: number, winEnd: number): void {
  const { text } = scan;
  // One character of context lets libphonenumber reject "$415 555 2671" and the like; the tail
  // (by default) lets it pick up an extension ("ext. 123") written after the number.
  const winStart = Math.max(scan.last, start - 1);
  const window = text.slice(winStart, winEnd);
  // The matcher itself, not `searchPhoneNumbersInText`: that wrapper normalizes its arguments and
  // copies its options on every call, for an iterator this loop does not need.
  const matcher = new PhoneNumberMatcher(window, { defaultCountry: scan.defaultCountry, v2: true });
  while (matcher.hasNext()) {
    const found = matcher.next();
    if (found === undefined) break;
    const startsAt = winStart + found.startsAt;
    const endsAt = winStart + found.endsAt;
    // Numbers starting in the look-ahead tail are cut off there; their own span finds them.
    if (startsAt < scan.last || startsAt >= end) continue;
    // libphonenumber reads a run it cannot parse whole from its last "(" or space, so
    // "+1-212-220-0000 1 (212) 220-0000" yields only the second number: look again before it.
    const before = Math.max(scan.last, start);
    if (startsAt - before <= MAX_RESCAN_CHARS) scanPhoneSpan(scan, before, startsAt, startsAt);
    const standalone = isStandalonePhone(text, startsAt, endsAt, found.number);
    const ext = found.number.ext;
    const extStart = ext === undefined ? -1 : text.lastIndexOf(ext, endsAt);
    // "x 212" in "(212) 220-0000 x 212.220.0000" is not an extension, nor is the amount after a
    // comma and a space in "(212) 220-0000, 1299 EUR" (",12" is a dialling pause, ", 12" a list):
    // look again without it.
    if (
      extStart > startsAt &&
      (!standalone || LIST_COMMA_RE.test(text.slice(startsAt, extStart)))
    ) {
      scanPhoneSpan(scan, startsAt, extStart, extStart);
      continue;
    }
    if (!standalone) {
      // A rejected match across a space may straddle two numbers ("3100 212" in
      // "212.220.3100 212.220.0000"): look again on either side of the space instead.
      const space = startsAt + text.slice(startsAt, endsAt).search(/\s/);
      if (space > startsAt && space < end && end - start <= MAX_RESCAN_CHARS) {
        scanPhoneSpan(scan, Math.max(scan.last, start), space, space);
        scanPhoneSpan(scan, Math.max(scan.last, space + 1), end, winEnd);
        return;
      }
      continue;
    }
    scan.out += text.slice(scan.last, startsAt) + PLACEHOLDER.phone;
    scan.last = endsAt;
    scan.counts.phone++;
  }
}

/**
 * libphonenumber validates the digits but happily takes the tail of an identifier such as
 * "ORD-2024-000123" or "#4155552671", and any digit grouping at all; reject both.
 */
function isStandalonePhone(
  text: string,
  startsAt: number,
  endsAt: number,
  number: PhoneNumber,
): boolean {
  if (isGluedBefore(text, startsAt)) return false;
  const after = text[endsAt];
  if (isWordAt(text, endsAt)) return false;
  if ((after === '-' || after === '.' || after === '/') && isDigitAt(text, endsAt + 1))
    return false;

  const candidate = text.slice(startsAt, endsAt);
  // An explicit country code is a strong enough signal; people group those every which way.
  if (candidate.includes('+')) return true;
  return hasPhoneGrouping(candidate, number);
}

/** Whether the number at `start` continues a word or identifier ("ORD-", "x", "#", "v1."). */
function isGluedBefore(text: string, start: number): boolean {
  // "+" and "(" already open a phone number, whatever precedes them.
  if (!isDigitAt(text, start)) return false;
  const before = text[start - 1];
  if (before === '#' || isWordAt(text, start - 1)) return true;
  return (before === '-' || before === '.' || before === '/') && isWordAt(text, start - 2);
}

/**
 * National-format numbers must be grouped as the country prints them (e.g. 415-555-2671, not
 * 4155-552671), or in short blocks of 2–4 digits as many Europeans write them.
 */
function hasPhoneGrouping(candidate: string, number: PhoneNumber): boolean {
  const groups = candidate.match(/\d+/g) ?? [];
  const ext = number.ext;
  // The extension follows "ext."/"x", so it is its own trailing group(s); drop its digits.
  let extDigits = ext === undefined ? 0 : ext.length;
  while (extDigits > 0 && groups.length > 0) {
    const lastGroup = groups.pop() ?? '';
    extDigits -= lastGroup.length;
  }
  if (groups.length <= 1) return true;
  if (groups.every((g) => SHORT_GROUPS_RE.test(g))) return true;

  const nationalLength = number.nationalNumber.length;
  const expected = boundariesFromEnd(number.formatNational().match(/\d+/g) ?? []);
  const actual = boundariesFromEnd(groups);
  for (const b of actual) {
    // Boundaries at or beyond the national number only split off a trunk prefix ("1-800", "0 20").
    if (b < nationalLength && !expected.has(b)) return false;
  }
  return true;
}

/** Positions between digit groups, counted in digits from the end. */
function boundariesFromEnd(groups: readonly string[]): Set<number> {
  const result = new Set<number>();
  let fromEnd = 0;
  for (let i = groups.length - 1; i > 0; i--) {
    fromEnd += groups[i]?.length ?? 0;
    result.add(fromEnd);
  }
  return result;
}
