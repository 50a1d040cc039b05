import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import express from 'express';
import type { Registry } from 'prom-client';
import { authenticateTenant, type Authenticator } from '@memfleet/http/auth';
import { withDirectRoutes } from '@memfleet/http/direct-route';
import {
  errorHandler,
  errorResponder,
  notFound,
  requestContext,
  sendJson,
  serveBasics,
} from '@memfleet/http/http-basics';
import { HttpError } from '@memfleet/http/http-error';
import { parseId } from '@memfleet/http/ids';
import type { RateLimit } from '@memfleet/http/rate-limit';
import { securityHeaders } from '@memfleet/http/security-headers';
import type { Logger } from '@memfleet/logger/create-logger';
import type { ReaderMetrics } from '@memfleet/metrics/reader-metrics';
import type { ContextReader } from './read-context.ts';

/** Dependencies of {@link createReaderApp}. */
export interface ReaderAppDeps {
  auth: Authenticator;
  /** Called with the time the request arrived, from which its budget counts. */
  readContext: ContextReader;
  checkReady: () => Promise<void>;
  /** The per-tenant read limit, checked after the key. */
  readLimit: RateLimit;
  registry: Registry;
  metrics: ReaderMetrics;
  logger: Pick<Logger, 'error' | 'http' | 'isLevelEnabled'>;
  now?: () => number;
}

/** The read route, as metrics and logs name it. */
const READ_ROUTE = '/v1/threads/:thread_id/context';

/**
 * The reader: an Express app with one read route, health and metrics, the read route being a
 * direct route ({@link withDirectRoutes}) answered straight from Node's HTTP server with the same
 * steps (key, rate limit, ids, read, error answers). What `http.createServer` takes.
 */
export function createReaderApp(deps: ReaderAppDeps): RequestListener {
  const now = deps.now ?? Date.now;
  const app = express();
  app.disable('x-powered-by');
  // A context is for one turn: nobody revalidates it, so no body is hashed for an ETag.
  app.disable('etag');
  // Node's querystring, which the direct route parses with too.
  app.set('query parser', 'simple');
  const headers = securityHeaders();
  const errorOptions = {
    bodyLimitBytes: 0,
    logger: deps.logger,
    unavailableMessage: 'memory context is unavailable; go on without it',
  };

  /** GET context from the key check to the answer; the budget counts from `arrivedAt`. */
  const read = async (
    req: IncomingMessage,
    res: ServerResponse,
    rawThreadId: string,
    arrivedAt: number,
  ): Promise<void> => {
    const { tenant } = authenticateTenant(deps.auth, req, 'read');
    await deps.readLimit.admit(tenant);
    const threadId = parseId(rawThreadId, 'thread_id');
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const userId = parseId(q < 0 ? undefined : parseQuery(url.slice(q + 1)).user_id, 'user_id');
    const answer = await deps.readContext(tenant, threadId, userId, arrivedAt);
    if (answer === undefined) {
      // The same answer whether the thread is another tenant's, another user's or unknown.
      throw new HttpError(404, 'not_found', `thread_id: ${threadId} is unknown for this user`);
    }
    sendJson(res, 200, answer);
  };

  app.use((_req, res, next) => {
    res.locals.arrivedAt = now();
    next();
  });
  app.use(requestContext(deps.metrics.httpDuration, deps.logger));
  app.use(headers);

  app.get(READ_ROUTE, (req, res, next) => {
    read(req, res, req.params.thread_id, res.locals.arrivedAt as number).catch(next);
  });

  serveBasics(app, deps);

  app.use(notFound);
  app.use(errorHandler(errorOptions));

  return withDirectRoutes(
    app,
    [
      {
        method: 'GET',
        path: /^\/v1\/threads\/([^/?#]+)\/context(?:\?|$)/,
        template: READ_ROUTE,
        handle: (req, res, threadId) => read(req, res, threadId, now()),
      },
    ],
    {
      duration: deps.metrics.httpDuration,
      logger: deps.logger,
      headers,
      answerError: errorResponder(errorOptions),
    },
  );
}
