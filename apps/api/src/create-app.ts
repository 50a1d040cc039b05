import express, { type Express, type Router } from 'express';
import type { Registry } from 'prom-client';
import { toError } from '@memfleet/errors/to-error';
import type { Logger } from '@memfleet/logger/create-logger';
import type { ApiMetrics } from '@memfleet/metrics/api-metrics';
import type { AcceptResult } from './accept-messages.ts';
import { principalOf, requireAdmin, requireTenant, type Authenticator } from '@memfleet/http/auth';
import { errorHandler, notFound, requestContext } from '@memfleet/http/http-basics';
import { HttpError } from '@memfleet/http/http-error';
import { parseId } from '@memfleet/http/ids';
import { DASHBOARD_PATH } from './dashboard.ts';
import { describeIssues, messagesRequestSchema, type MessagesRequest } from './message-request.ts';
import type { MessageStatusView } from './message-status.ts';

/** Dependencies of {@link createApp}: services and wiring, all built by main.ts or a test. */
export interface AppDeps {
  auth: Authenticator;
  acceptMessages: (tenant: string, threadId: string, req: MessagesRequest) => Promise<AcceptResult>;
  messageStatus: (
    tenant: string,
    clientMessageId: string,
  ) => Promise<MessageStatusView | undefined>;
  /** Throws when a dependency (Redis, Postgres) is unreachable. */
  checkReady: () => Promise<void>;
  dashboard: Router;
  registry: Registry;
  metrics: ApiMetrics;
  logger: Pick<Logger, 'error' | 'warn' | 'http'>;
  bodyLimitBytes: number;
  contentMaxChars: number;
}

/** The API's Express app: routes are thin; services do the work. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const schema = messagesRequestSchema(deps.contentMaxChars);

  app.use(requestContext(deps.metrics.httpDuration, deps.logger));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await deps.checkReady();
      res.json({ ready: true });
    } catch (err: unknown) {
      res.status(503).json({
        error: { code: 'not_ready', message: toError(err).message },
      });
    }
  });
  app.get('/metrics', async (_req, res) => {
    res.type(deps.registry.contentType).send(await deps.registry.metrics());
  });

  const json = express.json({ limit: deps.bodyLimitBytes, type: () => true });

  app.post(
    '/v1/threads/:thread_id/messages',
    requireTenant(deps.auth),
    (req, _res, next) => {
      if (!req.is('application/json')) {
        next(
          new HttpError(415, 'unsupported_media_type', 'content-type: must be application/json'),
        );
        return;
      }
      next();
    },
    json,
    async (req, res) => {
      const threadId = parseId(req.params.thread_id, 'thread_id');
      const parsed = schema.safeParse(req.body);
      if (!parsed.success) {
        const { message, fields } = describeIssues(parsed.error);
        throw new HttpError(400, 'invalid_request', message, {}).withFields(fields);
      }
      const result = await deps.acceptMessages(principalOf(res).tenant, threadId, parsed.data);
      res.status(202).json(result);
    },
  );

  app.get('/v1/messages/:client_message_id', requireTenant(deps.auth), async (req, res) => {
    const id = parseId(req.params.client_message_id, 'client_message_id');
    const status = await deps.messageStatus(principalOf(res).tenant, id);
    if (status === undefined) {
      throw new HttpError(404, 'not_found', `client_message_id: ${id} is unknown`);
    }
    res.json(status);
  });

  app.use(DASHBOARD_PATH, requireAdmin(deps.auth), deps.dashboard);

  app.use(notFound);
  app.use(
    errorHandler({
      bodyLimitBytes: deps.bodyLimitBytes,
      logger: deps.logger,
      unavailableMessage: 'a dependency is unavailable; retry with the same client_message_id',
    }),
  );
  return app;
}
