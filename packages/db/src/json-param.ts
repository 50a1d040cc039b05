// An unpaired UTF-16 surrogate: JSON.stringify escapes it, and Postgres refuses such an escape.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const LONE_SURROGATES = /[\uD800-\uDFFF]/gu;

/**
 * A string as Postgres can take it inside a JSON parameter: an unpaired surrogate becomes U+FFFD,
 * as it does when pg encodes a plain text parameter.
 */
export function wellFormed(s: string): string {
  return LONE_SURROGATE.test(s) ? s.replace(LONE_SURROGATES, '\uFFFD') : s;
}
