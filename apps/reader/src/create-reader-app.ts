import express, { type Express } from 'express';
import type { Registry } from 'prom-client';
import { principalOf, requireTenant, type Authenticator } from '@memfleet/http/auth';
import {
  errorHandler,
  notFound,
  requestContext,
  sendJson,
  serveBasics,
} from '@memfleet/http/http-basics';
import { HttpError } from '@memfleet/http/http-error';
import { parseId } from '@memfleet/http/ids';
import { rateLimited, type RateLimit } from '@memfleet/http/rate-limit';
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
  /** The per-tenant read limit, mounted after the key check. */
  readLimit: RateLimit;
  registry: Registry;
  metrics: ReaderMetrics;
  logger: Pick<Logger, 'error' | 'http' | 'isLevelEnabled'>;
  now?: () => number;
}

/** The reader's Express app: one read route, health and metrics. */
export function createReaderApp(deps: ReaderAppDeps): Express {
  const now = deps.now ?? Date.now;
  const app = express();
  app.disable('x-powered-by');
  // A context is for one turn: nobody revalidates it, so no body is hashed for an ETag.
  app.disable('etag');
  app.set('query parser', 'simple');
  app.use((_req, res, next) => {
    res.locals.arrivedAt = now();
    next();
  });
  app.use(requestContext(deps.metrics.httpDuration, deps.logger));
  app.use(securityHeaders());

  app.get(
    '/v1/threads/:thread_id/context',
    requireTenant(deps.auth, 'read'),
    rateLimited(deps.readLimit),
    async (req, res) => {
      const threadId = parseId(req.params.thread_id, 'thread_id');
      const userId = parseId(req.query.user_id, 'user_id');
      const answer = await deps.readContext(
        principalOf(res).tenant,
        threadId,
        userId,
        res.locals.arrivedAt as number,
      );
      if (answer === undefined) {
        // The same answer whether the thread is another tenant's, another user's or unknown.
        throw new HttpError(404, 'not_found', `thread_id: ${threadId} is unknown for this user`);
      }
      sendJson(res, 200, answer);
    },
  );

  serveBasics(app, deps);

  app.use(notFound);
  app.use(
    errorHandler({
      bodyLimitBytes: 0,
      logger: deps.logger,
      unavailableMessage: 'memory context is unavailable; go on without it',
    }),
  );
  return app;
}
