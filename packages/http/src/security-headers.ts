import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet from 'helmet';

/** Sets the headers on a response, then calls `next`; Express middleware as it is. */
export type SecurityHeaders = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void;

/**
 * helmet's headers with its default Content-Security-Policy (`default-src 'self'`, `script-src
 * 'self'`, `style-src 'self' https: 'unsafe-inline'`, …), HSTS, `nosniff`, `frame-ancestors 'self'`
 * and the rest. The Bull Board UI runs under it as it is: its scripts come from its own static path
 * and only its styles are inline.
 */
export function securityHeaders(): SecurityHeaders {
  return helmet();
}
