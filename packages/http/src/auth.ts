import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { ApiKeyEntry } from '@memfleet/config/load-config';
import { HttpError } from './http-error.ts';

const sha256 = (value: string): Buffer => createHash('sha256').update(value).digest();

/** The caller a request was authenticated as. */
export interface Principal {
  tenant: string;
}

/** Checks bearer keys against tenants and the admin key. Keys are held only as SHA-256 digests. */
export interface Authenticator {
  /** The tenant of a presented key, or undefined. */
  tenantOf(key: string): string | undefined;
  /** Whether the presented key is the admin key. */
  isAdmin(key: string): boolean;
  /** Whether the presented key is one of the read-only dashboard keys. */
  isDashboardViewer(key: string): boolean;
}

/** Builds the key table from the configuration. */
export function createAuthenticator(
  apiKeys: readonly ApiKeyEntry[],
  adminKey: string,
  dashboardKeys: readonly string[] = [],
): Authenticator {
  const byDigest = new Map(apiKeys.map((k) => [sha256(k.key).toString('hex'), k.tenant]));
  const adminDigest = sha256(adminKey);
  const viewerDigests = new Set(dashboardKeys.map((k) => sha256(k).toString('hex')));
  return {
    // The lookup is by digest, so timing depends on the digest, never on how much of a key matched.
    tenantOf: (key) => byDigest.get(sha256(key).toString('hex')),
    isAdmin: (key) => timingSafeEqual(sha256(key), adminDigest),
    isDashboardViewer: (key) => viewerDigests.has(sha256(key).toString('hex')),
  };
}

function bearer(req: Request): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

function basicPassword(req: Request): string | undefined {
  const header = req.headers.authorization;
  const match = header === undefined ? null : /^Basic\s+(\S+)\s*$/i.exec(header);
  if (match?.[1] === undefined) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

/** Requires a tenant key; sets `res.locals.principal`. */
export function requireTenant(auth: Authenticator) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const key = bearer(req);
    if (key === undefined) {
      next(new HttpError(401, 'unauthorized', 'Authorization: Bearer <api key> required'));
      return;
    }
    const tenant = auth.tenantOf(key);
    if (tenant === undefined) {
      next(new HttpError(401, 'unauthorized', 'unknown API key'));
      return;
    }
    const principal: Principal = { tenant };
    res.locals.principal = principal;
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
    next(
      new HttpError(
        key === undefined || auth.tenantOf(key) === undefined ? 401 : 403,
        key === undefined || auth.tenantOf(key) === undefined ? 'unauthorized' : 'forbidden',
        'admin key required',
        { 'www-authenticate': 'Basic realm="memfleet admin", charset="UTF-8"' },
      ),
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

/** The access set by {@link requireDashboard}; read-only when unset. */
export function dashboardAccessOf(res: Response): DashboardAccess {
  return res.locals.dashboardAccess === 'admin' ? 'admin' : 'viewer';
}

/** The principal set by {@link requireTenant}. */
export function principalOf(res: Response): Principal {
  return res.locals.principal as Principal;
}
