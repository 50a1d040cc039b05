import { redact, type RedactOptions, type RedactionCounts } from './redact.ts';

/** Containers nested deeper than this are replaced by {@link TRUNCATED}. */
const MAX_DEPTH = 20;
const CIRCULAR = '[Circular]';
const TRUNCATED = '[Truncated]';
const UNREADABLE = '[Unreadable]';

interface Walk {
  readonly options: RedactOptions | undefined;
  readonly counts: RedactionCounts;
  /** Objects on the path from the root to the current value, i.e. what a cycle would revisit. */
  readonly ancestors: Set<object>;
}

/**
 * Returns a copy of `value` in which every string value (not key) is passed through
 * {@link redact}, along with the total counts.
 *
 * Plain objects and arrays are copied; a reference back to an ancestor becomes `'[Circular]'` and
 * anything nested deeper than 20 levels becomes `'[Truncated]'`. Other objects are turned into
 * JSON-friendly data first: a `Date` into its ISO string, an `Error` into
 * `{ name, message, stack }` (plus `code` and `cause` when set), a `Map` into an object, a `Set`
 * into an array, binary data into a short description, an object with `toJSON()` into its result,
 * and any other instance into a plain object of its own enumerable properties. The input is never
 * modified.
 */
export function redactDeep(
  value: unknown,
  options?: RedactOptions,
): { value: unknown; counts: RedactionCounts } {
  const walk: Walk = { options, counts: { email: 0, phone: 0, card: 0 }, ancestors: new Set() };
  return { value: visit(walk, value, 0), counts: walk.counts };
}

function visit(walk: Walk, value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactString(walk, value);
  if (typeof value !== 'object' || value === null) return value;
  if (walk.ancestors.has(value)) return CIRCULAR;
  if (depth > MAX_DEPTH) return TRUNCATED;

  if (value instanceof Date) {
    return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  }
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    // Raw bytes are neither readable in a log nor redactable; say what was there instead.
    return `[${value.constructor.name} ${value.byteLength} bytes]`;
  }

  walk.ancestors.add(value);
  try {
    return visitObject(walk, value, depth);
  } finally {
    walk.ancestors.delete(value);
  }
}

function visitObject(walk: Walk, value: object, depth: number): unknown {
  if (Array.isArray(value)) {
    const out: unknown[] = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = visitProperty(walk, value, i, depth);
    return out;
  }
  if (value instanceof Error) return visitError(walk, value, depth);
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value) setProperty(out, String(k), visit(walk, v, depth + 1));
    return out;
  }
  if (value instanceof Set) {
    return Array.from(value, (v) => visit(walk, v, depth + 1));
  }

  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    const toJSON: unknown = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      let json: unknown;
      try {
        json = (toJSON as () => unknown).call(value);
      } catch {
        return UNREADABLE;
      }
      // toJSON() may return the object itself or another instance; only re-enter for new values.
      return json === value ? copyOwnProperties(walk, value, depth) : visit(walk, json, depth);
    }
  }
  return copyOwnProperties(walk, value, depth);
}

function copyOwnProperties(walk: Walk, value: object, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value))
    setProperty(out, key, visitProperty(walk, value, key, depth));
  return out;
}

function visitError(walk: Walk, err: Error, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: visit(walk, err.name, depth + 1),
    message: visit(walk, err.message, depth + 1),
    stack: visit(walk, err.stack, depth + 1),
  };
  // Node's system errors carry the useful part ("ECONNREFUSED") in `code`.
  const code = visitProperty(walk, err, 'code', depth);
  if (code !== undefined) out.code = code;
  const cause = visitProperty(walk, err, 'cause', depth);
  if (cause !== undefined) out.cause = cause;
  return out;
}

/** Reads and visits one property; a throwing getter must not break logging. */
function visitProperty(walk: Walk, owner: object, key: PropertyKey, depth: number): unknown {
  let child: unknown;
  try {
    child = (owner as Record<PropertyKey, unknown>)[key];
  } catch {
    return UNREADABLE;
  }
  return visit(walk, child, depth + 1);
}

/**
 * Sets an own, enumerable property. Plain assignment of `__proto__` would set the prototype
 * instead of copying the key.
 */
export function setProperty(out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(out, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    out[key] = value;
  }
}

function redactString(walk: Walk, text: string): string {
  const result = redact(text, walk.options);
  const { counts } = walk;
  counts.email += result.counts.email;
  counts.phone += result.counts.phone;
  counts.card += result.counts.card;
  return result.text;
}
