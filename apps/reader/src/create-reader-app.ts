import express, { type Express, type RequestHandler } from 'express';
import type { Registry } from 'prom-client';
import { principalOf, requireTenant, type Authenticator } from '@memfleet/http/auth';
import { errorHandler, notFound, requestContext, serveBasics } from '@memfleet/http/http-basics';
import { HttpError } from '@memfleet/http/http-error';
import { parseId } from '@memfleet/http/ids';
import { securityHeaders } from '@memfleet/http/security-headers';
import type { Logger } from '@memfleet/logger/create-logger';
import type { ReaderMetrics } from '@memfleet/metrics/reader-metrics';
import type { ContextAnswer } from './read-context.ts';

/** Dependencies of {@link createReaderApp}. */
export interface ReaderAppDeps {
  auth: Authenticator;
  readContext: (
    tenant: string,
    threadId: string,
    userId: string,
  ) => Promise<ContextAnswer | undefined>;
  checkReady: () => Promise<void>;
  /** The per-tenant read limit, mounted after the key check. */
  readLimit: RequestHandler;
  registry: Registry;
  metrics: ReaderMetrics;
  logger: Pick<Logger, 'error' | 'http' | 'isLevelEnabled'>;
}

/** The reader's Express app: one read route, health and metrics. */
export function createReaderApp(deps: ReaderAppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(requestContext(deps.metrics.httpDuration, deps.logger));
  app.use(securityHeaders());

  serveBasics(app, deps);

  app.get(
    '/v1/threads/:thread_id/context',
    requireTenant(deps.auth, 'read'),
    deps.readLimit,
    async (req, res) => {
      const threadId = parseId(req.params.thread_id, 'thread_id');
      const userId = parseId(req.query.user_id, 'user_id');
      const answer = await deps.readContext(principalOf(res).tenant, threadId, userId);
      if (answer === undefined) {
        // The same answer whether the thread is another tenant's, another user's or unknown.
        throw new HttpError(404, 'not_found', `thread_id: ${threadId} is unknown for this user`);
      }
      res.json(answer);
    },
  );

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
