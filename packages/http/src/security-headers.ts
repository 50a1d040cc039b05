import type { RequestHandler } from 'express';
import helmet from 'helmet';

/**
 * helmet's headers with its default Content-Security-Policy (`default-src 'self'`, `script-src
 * 'self'`, `style-src 'self' https: 'unsafe-inline'`, …), HSTS, `nosniff`, `frame-ancestors 'self'`
 * and the rest. The Bull Board UI runs under it as it is: its scripts come from its own static path
 * and only its styles are inline.
 */
export function securityHeaders(): RequestHandler {
  return helmet();
}
