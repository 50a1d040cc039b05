import { randomUUID } from 'node:crypto';
import express, {
  type ErrorRequestHandler,
  type Express,
  type NextFunction,
  type Request,
  type Response,
  type Router,
} from 'express';
import type { Registry } from 'prom-client';
import { toError } from '@memfleet/errors/to-error';
import type { Logger } from '@memfleet/logger/create-logger';
import type { ApiMetrics } from '@memfleet/metrics/api-metrics';
import type { AcceptResult } from './accept-messages.ts';
import { principalOf, requireAdmin, requireTenant, type Authenticator } from './auth.ts';
import { DASHBOARD_PATH } from './dashboard.ts';
import { HttpError } from './http-error.ts';
import {
  describeIssues,
  idSchema,
  messagesRequestSchema,
  type MessagesRequest,
} from './message-request.ts';
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

const DEPENDENCY_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND']);

// Redis or Postgres being unreachable is a 503 (retry later), anything else a 500.
function isDependencyFailure(e: Error): boolean {
  const code = (e as { code?: unknown }).code;
  return (
    (typeof code === 'string' && (DEPENDENCY_CODES.has(code) || /^(08|57P)/.test(code))) ||
    e.name === 'MaxRetriesPerRequestError' ||
    /Connection is closed|Stream isn't writeable|Connection terminated/.test(e.message)
  );
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function parseId(value: unknown, field: string): string {
  const parsed = idSchema.safeParse(value);
  if (!parsed.success) {
    throw new HttpError(
      400,
      'invalid_request',
      `${field}: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}

/** The API's Express app: routes are thin; services do the work. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const schema = messagesRequestSchema(deps.contentMaxChars);

  app.use((req: Request, res: Response, next: NextFunction) => {
    const incoming = req.headers['x-request-id'];
    const requestId =
      typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = requestId;
    res.setHeader('x-request-id', requestId);
    const end = deps.metrics.httpDuration.startTimer();
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      const labels = { route, method: req.method, status: String(res.statusCode) };
      end(labels);
      deps.logger.http('request', { requestId, ...labels });
    });
    next();
  });

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

  app.use((req, _res, next) => {
    next(new HttpError(404, 'not_found', `no route for ${req.method} ${req.path}`));
  });

  const onError: ErrorRequestHandler = (err: unknown, _req, res, _next) => {
    const e = toError(err);
    let status = 500;
    let code = 'internal';
    let message = 'internal error';
    let fields: string[] | undefined;
    if (e instanceof HttpError) {
      ({ status, code, message } = e);
      fields = e.fields;
      for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
    } else {
      const type = (err as { type?: unknown }).type;
      if (type === 'entity.parse.failed') {
        status = 400;
        code = 'invalid_json';
        message = 'body: not valid JSON';
      } else if (type === 'entity.too.large') {
        status = 413;
        code = 'payload_too_large';
        message = `body: larger than ${deps.bodyLimitBytes} bytes`;
      } else if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
        status = 415;
        code = 'unsupported_media_type';
        message = 'body: unsupported encoding';
      } else {
        deps.logger.error('request failed', { requestId: res.getHeader('x-request-id'), err: e });
        if (isDependencyFailure(e)) {
          status = 503;
          code = 'unavailable';
          message = 'a dependency is unavailable; retry with the same client_message_id';
        }
      }
    }
    res.status(status).json({ error: { code, message, ...(fields ? { fields } : {}) } });
  };
  app.use(onError);
  return app;
}
