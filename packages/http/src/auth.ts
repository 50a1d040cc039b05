import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { ApiKeyEntry, KeyScope } from '@memfleet/config/load-config';
import { HttpError } from './http-error.ts';

const sha256 = (value: string): Buffer => createHash('sha256').update(value).digest();

/** The caller a request was authenticated as. */
export interface Principal {
  tenant: string;
  scopes: readonly KeyScope[];
}

/** Checks bearer keys against tenants and the admin key. Keys are held only as SHA-256 digests. */
export interface Authenticator {
  /** The tenant and scopes of a presented key, or undefined. */
  principalOf(key: string): Principal | undefined;
  /** The tenant of a presented key, or undefined. */
  tenantOf(key: string): string | undefined;
  /** Whether the presented key is the admin key. */
  isAdmin(key: string): boolean;
  /** Whether the presented key is one of the read-only dashboard keys. */
  isDashboardViewer(key: string): boolean;
}

/**
 * Builds the key table from the configuration: tenant entries (digests and scopes), the hex digest
 * of the admin key and those of the dashboard keys.
 */
export function createAuthenticator(
  apiKeys: readonly ApiKeyEntry[],
  adminKeyDigest: string,
  dashboardKeyDigests: readonly string[] = [],
): Authenticator {
  const byDigest = new Map<string, Principal>(
    apiKeys.map((k) => [k.digest, { tenant: k.tenant, scopes: k.scopes }]),
  );
  const adminDigest = Buffer.from(adminKeyDigest, 'hex');
  if (adminDigest.length !== 32) throw new Error('admin key digest: expected 64 hex digits');
  const viewerDigests = new Set(dashboardKeyDigests);
  // The lookups are by digest, so timing depends on the digest, never on how much of a key matched.
  const principalOf = (key: string): Principal | undefined =>
    byDigest.get(sha256(key).toString('hex'));
  return {
    principalOf,
    tenantOf: (key) => principalOf(key)?.tenant,
    isAdmin: (key) => timingSafeEqual(sha256(key), adminDigest),
    isDashboardViewer: (key) => viewerDigests.has(sha256(key).toString('hex')),
  };
}

function bearer(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

function basicPassword(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  const match = header === undefined ? null : /^Basic\s+(\S+)\s*$/i.exec(header);
  if (match?.[1] === undefined) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

/**
 * The tenant of a request's bearer key, which must have `scope`. No or an unknown key throws a
 * 401, a key without the scope (or the admin or a dashboard key) a 403.
 */
export function authenticateTenant(
  auth: Authenticator,
  req: IncomingMessage,
  scope: KeyScope,
): Principal {
  const key = bearer(req);
  if (key === undefined) {
    throw new HttpError(401, 'unauthorized', 'Authorization: Bearer <api key> required');
  }
  const principal = auth.principalOf(key);
  if (principal === undefined) {
    throw auth.isAdmin(key) || auth.isDashboardViewer(key)
      ? new HttpError(403, 'forbidden', 'a tenant API key is required here, not an admin key')
      : new HttpError(401, 'unauthorized', 'unknown API key');
  }
  if (!principal.scopes.includes(scope)) {
    throw new HttpError(403, 'forbidden', `API key lacks the ${scope} scope`);
  }
  return principal;
}

/** {@link authenticateTenant} as Express middleware; sets what {@link principalOf} reads. */
export function requireTenant(auth: Authenticator, scope: KeyScope) {
  return (req: Request, res: Response, next: NextFunction): void => {
    try {
      res.locals.principal = authenticateTenant(auth, req, scope);
    } catch (err: unknown) {
      next(err);
      return;
    }
    next();
  };
}

/**
 * Requires the admin key, as a bearer token or as the password of HTTP basic auth (so a browser can
 * open the dashboard).
 */
export function requireAdmin(auth: Authenticator) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const key = bearer(req) ?? basicPassword(req);
    if (key !== undefined && auth.isAdmin(key)) {
      next();
      return;
    }
    const known =
      key !== undefined && (auth.tenantOf(key) !== undefined || auth.isDashboardViewer(key));
    next(
      new HttpError(known ? 403 : 401, known ? 'forbidden' : 'unauthorized', 'admin key required', {
        'www-authenticate': 'Basic realm="memfleet admin", charset="UTF-8"',
      }),
    );
  };
}

/** How much of the dashboard a caller may use: everything, or a read-only view. */
export type DashboardAccess = 'admin' | 'viewer';

/**
 * Requires the admin key or a read-only dashboard key (bearer, or the password of HTTP basic
 * auth); sets the access {@link dashboardAccessOf} reads.
 */
export function requireDashboard(auth: Authenticator) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const key = bearer(req) ?? basicPassword(req);
    const access: DashboardAccess | undefined =
      key === undefined
        ? undefined
        : auth.isAdmin(key)
          ? 'admin'
          : auth.isDashboardViewer(key)
            ? 'viewer'
            : undefined;
    if (access !== undefined) {
      res.locals.dashboardAccess = access;
      next();
      return;
    }
    const known = key !== undefined && auth.tenantOf(key) !== undefined;
    next(
      new HttpError(
        known ? 403 : 401,
        known ? 'forbidden' : 'unauthorized',
        'admin or dashboard key required',
        { 'www-authenticate': 'Basic realm="memfleet admin", charset="UTF-8"' },
      ),
    );
  };
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Refuses cross-site requests that change state while riding a browser's basic-auth credentials:
 * a POST, PUT, PATCH or DELETE authenticated by basic auth must come from the same origin
 * (`Sec-Fetch-Site` `same-origin` or `none` when sent, and an `Origin` whose host is the request's
 * `Host` when sent). A bearer token is never sent by a browser on its own, so bearer requests pass.
 */
export function requireSameOriginForBasicAuth() {
  return (req: Request, _res: Response, next: NextFunction): void => {
    if (SAFE_METHODS.has(req.method) || bearer(req) !== undefined) {
      next();
      return;
    }
    const site = req.headers['sec-fetch-site'];
    const origin = req.headers.origin;
    let sameHost = true;
    if (origin !== undefined) {
      try {
        sameHost = origin !== 'null' && new URL(origin).host === req.headers.host;
      } catch {
        sameHost = false;
      }
    }
    if ((site === undefined || site === 'same-origin' || site === 'none') && sameHost) {
      next();
      return;
    }
    next(
      new HttpError(
        403,
        'csrf_rejected',
        'Origin: a cross-site request may not change the dashboard; use the same origin or a bearer admin key',
      ),
    );
  };
}

/** The access set by {@link requireDashboard}; read-only when unset. */
export function dashboardAccessOf(res: Response): DashboardAccess {
  return res.locals.dashboardAccess === 'admin' ? 'admin' : 'viewer';
}

/** The principal set by {@link requireTenant}. */
export function principalOf(res: Response): Principal {
  return res.locals.principal as Principal;
}
