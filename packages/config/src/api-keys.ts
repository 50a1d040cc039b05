import { createHash } from 'node:crypto';

/** What a tenant name of `MEMFLEET_API_KEYS` looks like. */
export const TENANT_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** What a tenant key may do: `read` (status, context), `write` (enqueue, erase), or both. */
export type KeyScope = 'read' | 'write';

/**
 * One tenant key of `MEMFLEET_API_KEYS` or `MEMFLEET_API_KEYS_FILE`, held only as the SHA-256
 * digest of the key: the plain key is never kept after parsing.
 */
export interface ApiKeyEntry {
  tenant: string;
  /** Lowercase hex SHA-256 of the key. */
  digest: string;
  scopes: readonly KeyScope[];
}

/** Lowercase hex SHA-256 of a key, as {@link ApiKeyEntry.digest} holds it. */
export const keyDigest = (key: string): string => createHash('sha256').update(key).digest('hex');

const HASHED_RE = /^sha256=([0-9a-fA-F]{64})$/;
const SCOPES: Record<string, readonly KeyScope[]> = {
  read: ['read'],
  write: ['write'],
  rw: ['read', 'write'],
};

/**
 * A key as configured: `sha256=<64 hex>` is taken as the digest of the key, anything else as the
 * plain key (at least 16 characters). Returns the digest, or the problem.
 */
export function parseKeySpec(spec: string): { digest: string } | { problem: string } {
  const hashed = HASHED_RE.exec(spec);
  if (hashed?.[1] !== undefined) return { digest: hashed[1].toLowerCase() };
  if (spec.startsWith('sha256=')) return { problem: 'sha256= must be followed by 64 hex digits' };
  if (spec.length < 16) return { problem: 'the key must be at least 16 characters' };
  return { digest: keyDigest(spec) };
}

/**
 * Parses one entry `tenant:key[:scope]` or `tenant:sha256=<hex>[:scope]`, scope `read`, `write`
 * or `rw` (the default). The scope is recognised only as the last `:`-separated part, so a key may
 * hold `:` but may not end in `:read`, `:write` or `:rw`.
 */
export function parseKeyEntry(item: string): ApiKeyEntry | { problem: string } {
  const at = item.indexOf(':');
  const tenant = at > 0 ? item.slice(0, at) : '';
  if (!TENANT_RE.test(tenant)) {
    return {
      problem:
        'must be tenant:key[:scope] with a tenant of lowercase letters, digits, - and _ (at most 63)',
    };
  }
  let rest = item.slice(at + 1);
  let scopes: readonly KeyScope[] = ['read', 'write'];
  const last = rest.lastIndexOf(':');
  const scope = last >= 0 ? SCOPES[rest.slice(last + 1)] : undefined;
  if (scope !== undefined) {
    scopes = scope;
    rest = rest.slice(0, last);
  }
  const key = parseKeySpec(rest);
  if ('problem' in key) return key;
  return { tenant, digest: key.digest, scopes };
}

/**
 * Parses the comma-separated `MEMFLEET_API_KEYS` and the lines of `MEMFLEET_API_KEYS_FILE` (one
 * entry per line; blank lines and `#` comments skipped). Each problem names the variable and the
 * entry or line, never the key.
 */
export function parseApiKeys(
  sources: { env?: string | undefined; file?: { path: string; text: string } | undefined },
  issues: string[],
): ApiKeyEntry[] {
  const entries: ApiKeyEntry[] = [];
  const take = (where: string, item: string): void => {
    const parsed = parseKeyEntry(item);
    if ('problem' in parsed) issues.push(`${where}: ${parsed.problem}`);
    else entries.push(parsed);
  };
  (sources.env ?? '').split(',').forEach((part, i) => {
    const item = part.trim();
    if (item !== '') take(`MEMFLEET_API_KEYS: entry ${i + 1}`, item);
  });
  if (sources.file !== undefined) {
    sources.file.text.split(/\r?\n/).forEach((line, i) => {
      const item = line.trim();
      if (item !== '' && !item.startsWith('#')) {
        take(`MEMFLEET_API_KEYS_FILE: ${sources.file?.path ?? ''} line ${i + 1}`, item);
      }
    });
  }
  if (entries.length === 0 && issues.length === 0) {
    issues.push('MEMFLEET_API_KEYS: no tenant:key entry given (nor in MEMFLEET_API_KEYS_FILE)');
  }
  const seen = new Map<string, string>();
  for (const e of entries) {
    const other = seen.get(e.digest);
    if (other !== undefined) {
      issues.push(
        other === e.tenant
          ? `MEMFLEET_API_KEYS: a key of tenant ${e.tenant} is given twice`
          : `MEMFLEET_API_KEYS: tenants ${other} and ${e.tenant} share a key`,
      );
    }
    seen.set(e.digest, e.tenant);
  }
  return entries;
}
