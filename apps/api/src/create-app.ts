import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type RequestHandler, type Router } from 'express';
import typeis from 'type-is';
import type { Registry } from 'prom-client';
import type { ZodSafeParseResult } from 'zod';
import { toError } from '@memfleet/errors/to-error';
import type { Flags } from '@memfleet/flags/flags';
import { toFlagsView } from '@memfleet/flags/flags-view';
import type { Logger } from '@memfleet/logger/create-logger';
import type { ApiMetrics } from '@memfleet/metrics/api-metrics';
import type { AcceptMessages } from '@memfleet/intake/accept-messages';
import {
  authenticateTenant,
  principalOf,
  requireAdmin,
  requireDashboard,
  requireSameOriginForBasicAuth,
  requireTenant,
  type Authenticator,
} from '@memfleet/http/auth';
import {
  errorHandler,
  errorResponder,
  isDependencyFailure,
  notFound,
  requestContext,
  sendJson,
  serveBasics,
} from '@memfleet/http/http-basics';
import { withDirectRoutes } from '@memfleet/http/direct-route';
import { HttpError } from '@memfleet/http/http-error';
import { rateLimited, type RateLimit } from '@memfleet/http/rate-limit';
import { securityHeaders } from '@memfleet/http/security-headers';
import { parseId } from '@memfleet/http/ids';
import { flagsPatchSchema, toFlagPatch } from './admin-flags.ts';
import { DASHBOARD_PATH } from './dashboard.ts';
import { describeIssues, messagesRequestSchema } from '@memfleet/intake/message-request';
import type { MessageStatusView } from './message-status.ts';

/** Dependencies of {@link createApp}: services and wiring, all built by main.ts or a test. */
export interface AppDeps {
  auth: Authenticator;
  acceptMessages: AcceptMessages;
  messageStatus: (
    tenant: string,
    clientMessageId: string,
  ) => Promise<MessageStatusView | undefined>;
  /** Queues the erasure of a user of a tenant. */
  eraseUser: (tenant: string, userId: string) => Promise<void>;
  /** Throws when a dependency (Redis, Postgres) is unreachable. */
  checkReady: () => Promise<void>;
  dashboard: Router;
  /**
   * Per-tenant rate limits, checked after the key: `enqueue` on POST messages and DELETE users,
   * `read` on GET status.
   */
  rateLimits: { enqueue: RateLimit; read: RateLimit };
  /** The live memory flags, shown and changed by `/v1/admin/flags`. */
  flags: Pick<Flags, 'snapshot' | 'update' | 'refresh'>;
  /** Tenant names of `MEMFLEET_API_KEYS`: the only ones a flag override may name. */
  tenants: readonly string[];
  registry: Registry;
  metrics: ApiMetrics;
  logger: Pick<Logger, 'error' | 'warn' | 'http' | 'isLevelEnabled'>;
  bodyLimitBytes: number;
  contentMaxChars: number;
}

/** The route of POST messages, as metrics and logs name it. */
const ENQUEUE_ROUTE = '/v1/threads/:thread_id/messages';

/**
 * The API: an Express app (routes are thin; services do the work), except that POST messages, the
 * chat's hot path, is a direct route ({@link withDirectRoutes}): answered straight from Node's
 * HTTP server with the same steps (key, rate limit, content type, body parser, validation,
 * intake, error answers). What `http.createServer` takes.
 */
export function createApp(deps: AppDeps): RequestListener {
  const app = express();
  app.disable('x-powered-by');
  // Answers are not revalidated: no body is hashed for an ETag.
  app.disable('etag');
  app.set('query parser', 'simple');
  const schema = messagesRequestSchema(deps.contentMaxChars);
  const flagsSchema = flagsPatchSchema(deps.tenants);
  const headers = securityHeaders();
  const errorOptions = {
    bodyLimitBytes: deps.bodyLimitBytes,
    logger: deps.logger,
    unavailableMessage: 'a dependency is unavailable; retry with the same client_message_id',
  };

  app.use(requestContext(deps.metrics.httpDuration, deps.logger));
  app.use(headers);

  serveBasics(app, deps);

  // The same parser for Express routes and the direct one: it needs nothing of Express.
  const json: (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void =
    express.json({ limit: deps.bodyLimitBytes, type: () => true });
  const requireJson = (req: IncomingMessage): void => {
    if (!typeis(req, ['application/json'])) {
      throw new HttpError(415, 'unsupported_media_type', 'content-type: must be application/json');
    }
  };
  const jsonOnly: RequestHandler = (req, _res, next) => {
    try {
      requireJson(req);
    } catch (err: unknown) {
      next(err);
      return;
    }
    next();
  };
  const readJson = (req: IncomingMessage, res: ServerResponse): Promise<unknown> =>
    new Promise((resolve, reject) => {
      json(req, res, (err?: unknown) => {
        if (err === undefined) resolve((req as { body?: unknown }).body);
        else reject(toError(err));
      });
    });
  const parse = <T>(result: ZodSafeParseResult<T>): T => {
    if (result.success) return result.data;
    const { message, fields } = describeIssues(result.error);
    throw new HttpError(400, 'invalid_request', message, {}).withFields(fields);
  };

  /** POST messages from the key check to the answer, in the order of Express middleware. */
  const enqueue = async (
    req: IncomingMessage,
    res: ServerResponse,
    rawThreadId: string,
  ): Promise<void> => {
    const { tenant } = authenticateTenant(deps.auth, req, 'write');
    await deps.rateLimits.enqueue.admit(tenant);
    requireJson(req);
    const body = await readJson(req, res);
    const threadId = parseId(rawThreadId, 'thread_id');
    const result = await deps.acceptMessages(tenant, threadId, parse(schema.safeParse(body)));
    sendJson(res, 202, result);
  };

  app.post(ENQUEUE_ROUTE, (req, res, next) => {
    enqueue(req, res, req.params.thread_id).catch(next);
  });

  app.get(
    '/v1/messages/:client_message_id',
    requireTenant(deps.auth, 'read'),
    rateLimited(deps.rateLimits.read),
    async (req, res) => {
      const id = parseId(req.params.client_message_id, 'client_message_id');
      const status = await deps.messageStatus(principalOf(res).tenant, id);
      if (status === undefined) {
        throw new HttpError(404, 'not_found', `client_message_id: ${id} is unknown`);
      }
      res.json(status);
    },
  );

  app.get('/v1/admin/flags', requireAdmin(deps.auth), async (_req, res) => {
    // Fresh from Redis when it answers; the last known flags when it does not.
    await deps.flags.refresh();
    res.json(toFlagsView(deps.flags.snapshot()));
  });

  app.put('/v1/admin/flags', requireAdmin(deps.auth), jsonOnly, json, async (req, res) => {
    const patch = toFlagPatch(parse(flagsSchema.safeParse(req.body)));
    try {
      res.json(toFlagsView(await deps.flags.update(patch)));
    } catch (err: unknown) {
      if (!isDependencyFailure(toError(err))) throw err;
      throw new HttpError(503, 'unavailable', 'Redis is unreachable: the flags were not changed');
    }
  });

  app.delete(
    '/v1/users/:user_id',
    requireTenant(deps.auth, 'write'),
    rateLimited(deps.rateLimits.enqueue),
    async (req, res) => {
      const userId = parseId(req.params.user_id, 'user_id');
      await deps.eraseUser(principalOf(res).tenant, userId);
      res.status(202).json({ user_id: userId, status: 'erasing' });
    },
  );

  app.use(
    DASHBOARD_PATH,
    requireDashboard(deps.auth),
    requireSameOriginForBasicAuth(),
    deps.dashboard,
  );

  app.use(notFound);
  app.use(errorHandler(errorOptions));

  return withDirectRoutes(
    app,
    [
      {
        method: 'POST',
        path: /^\/v1\/threads\/([^/?#]+)\/messages(?:\?|$)/,
        template: ENQUEUE_ROUTE,
        handle: enqueue,
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
