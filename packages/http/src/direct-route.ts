import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Histogram } from 'prom-client';
import { toError } from '@memfleet/errors/to-error';
import type { Logger } from '@memfleet/logger/create-logger';
import { trackRequest } from './http-basics.ts';
import type { SecurityHeaders } from './security-headers.ts';

/**
 * A hot route answered straight from Node's HTTP server, ahead of the app's Express routes.
 * Express's own work per request (its request and response prototypes, the router's walk through
 * every layer) costs more CPU than a hot route's key check, validation and Redis call together,
 * so the route runs its steps as plain functions on Node's request and response instead. The app
 * keeps the same route in Express, calling the same `handle`, for the paths only Express takes
 * (a trailing slash, capitals, a parameter that does not percent-decode).
 */
export interface DirectRoute {
  method: 'GET' | 'POST';
  /** The path as clients write it; its one group is the parameter, still percent-encoded. */
  path: RegExp;
  /** The route's template, as metrics and logs name it: Express's `req.route.path` for it. */
  template: string;
  /** The route's work after the request id and security headers: answers, or throws. */
  handle(req: IncomingMessage, res: ServerResponse, param: string): Promise<void>;
}

/** The parameter of `url` if it is written as `route.path`, percent-decoded as Express does. */
function paramOf(route: DirectRoute, url: string | undefined): string | undefined {
  const encoded = url === undefined ? undefined : route.path.exec(url)?.[1];
  if (encoded === undefined) return undefined;
  try {
    return decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
}

/**
 * `app` with `routes` answered ahead of it: a request one of them takes gets what the app's
 * middleware gives every request (an `x-request-id`, the duration metric and log line, the
 * security headers), then the route's `handle`, and any error it throws answered by `answerError`
 * (the app's error handler). Every other request goes to `app` untouched.
 */
export function withDirectRoutes(
  app: RequestListener,
  routes: readonly DirectRoute[],
  deps: {
    duration: Histogram<'route' | 'method' | 'status'>;
    logger: Pick<Logger, 'http' | 'isLevelEnabled'>;
    headers: SecurityHeaders;
    answerError: (err: unknown, res: ServerResponse) => void;
  },
): RequestListener {
  const tracking = { duration: deps.duration, logger: deps.logger };
  const entries = routes.map((route) => ({ route, routeOf: () => route.template }));
  return (req, res) => {
    for (const { route, routeOf } of entries) {
      if (req.method !== route.method) continue;
      const param = paramOf(route, req.url);
      if (param === undefined) continue;
      trackRequest(req, res, tracking, routeOf);
      deps.headers(req, res, (err?: unknown) => {
        (err === undefined ? route.handle(req, res, param) : Promise.reject(toError(err))).catch(
          (e: unknown) => {
            deps.answerError(e, res);
          },
        );
      });
      return;
    }
    app(req, res);
  };
}
