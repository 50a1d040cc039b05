import { randomUUID } from 'node:crypto';
import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type {
  ErrorRequestHandler,
  Express,
  NextFunction,
  Request,
  RequestHandler,
  Response,
} from 'express';
import type { Histogram, Registry } from 'prom-client';
import { toError } from '@memfleet/errors/to-error';
import { metricsSource } from '@memfleet/metrics/cluster-metrics';
import type { Logger } from '@memfleet/logger/create-logger';
import { HttpError } from './http-error.ts';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Gives a request an `x-request-id` (the caller's, if sane) and, once answered, times it into
 * `duration` by route template (`routeOf()`, read when the answer is sent), method and status.
 */
export function trackRequest(
  req: IncomingMessage,
  res: ServerResponse,
  deps: {
    duration: Histogram<'route' | 'method' | 'status'>;
    logger: Pick<Logger, 'http' | 'isLevelEnabled'>;
  },
  routeOf: () => string,
): void {
  const logged = deps.logger.isLevelEnabled('http');
  const incoming = req.headers['x-request-id'];
  const requestId =
    typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader('x-request-id', requestId);
  const end = deps.duration.startTimer();
  res.on('finish', () => {
    const labels = { route: routeOf(), method: req.method ?? '', status: String(res.statusCode) };
    end(labels);
    if (logged) deps.logger.http('request', { requestId, ...labels });
  });
}

/** {@link trackRequest} for every request of an Express app, by the route that took it. */
export function requestContext(
  duration: Histogram<'route' | 'method' | 'status'>,
  logger: Pick<Logger, 'http' | 'isLevelEnabled'>,
): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    trackRequest(req, res, { duration, logger }, () => {
      return (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
    });
    next();
  };
}

/**
 * Answers `status` with `value` as JSON: what `res.json` sends, without the ETag (a hash of every
 * body) and the content negotiation, which API answers have no use for.
 */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}

/** 404 for anything no route took. */
export const notFound: RequestHandler = (req, _res, next) => {
  next(new HttpError(404, 'not_found', `no route for ${req.method} ${req.path}`));
};

const DEPENDENCY_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND']);

/** Redis or Postgres being unreachable is a 503 (retry later), anything else a 500. */
export function isDependencyFailure(e: Error): boolean {
  const code = (e as { code?: unknown }).code;
  return (
    (typeof code === 'string' && (DEPENDENCY_CODES.has(code) || /^(08|57P)/.test(code))) ||
    e.name === 'MaxRetriesPerRequestError' ||
    /Connection is closed|Stream isn't writeable|Connection terminated|Command timed out/.test(
      e.message,
    )
  );
}

/** Options of {@link errorResponder} and {@link errorHandler}. */
export interface ErrorAnswerOptions {
  bodyLimitBytes: number;
  logger: Pick<Logger, 'error'>;
  /** Message of a 503, telling the client what to do. */
  unavailableMessage: string;
}

/**
 * Answers an error as `{"error":{code,message,fields?}}` with its status: an {@link HttpError} as
 * it says, the body parser's errors as 400, 413 or 415, a dependency failure as a logged 503 and
 * anything else as a logged 500. An error after the answer started can only end the connection.
 */
export function errorResponder(
  options: ErrorAnswerOptions,
): (err: unknown, res: ServerResponse) => void {
  return (err, res) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
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
        message = `body: larger than ${options.bodyLimitBytes} bytes`;
      } else if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
        status = 415;
        code = 'unsupported_media_type';
        message = 'body: unsupported encoding';
      } else if (err instanceof URIError) {
        // The router could not percent-decode a path parameter ("/v1/threads/%ZZ/messages").
        status = 400;
        code = 'invalid_request';
        message = 'path: not valid percent-encoding';
      } else if (isBodyReadError(err)) {
        // The body parser's own client errors without a type, e.g. a gzip body that is not gzip.
        status = 400;
        code = 'invalid_body';
        message = 'body: could not be decoded';
      } else {
        options.logger.error('request failed', {
          requestId: res.getHeader('x-request-id'),
          err: e,
        });
        if (isDependencyFailure(e)) {
          status = 503;
          code = 'unavailable';
          message = options.unavailableMessage;
        }
      }
    }
    sendJson(res, status, { error: { code, message, ...(fields ? { fields } : {}) } });
  };
}

/** {@link errorResponder} as an Express app's error handler. */
export function errorHandler(options: ErrorAnswerOptions): ErrorRequestHandler {
  const respond = errorResponder(options);
  return (err: unknown, _req, res, _next) => {
    respond(err, res);
  };
}

/** An error the body parser raised for the client's body (http-errors with a 4xx status). */
function isBodyReadError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { status, expose } = err as { status?: unknown; expose?: unknown };
  return expose === true && typeof status === 'number' && status >= 400 && status < 500;
}

/** `GET /healthz` (alive), `/readyz` (`checkReady` resolves) and `/metrics` (Prometheus text). */
export function serveBasics(
  app: Express,
  deps: { checkReady: () => Promise<void>; registry: Registry },
): void {
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await deps.checkReady();
      res.json({ ready: true });
    } catch (err: unknown) {
      res.status(503).json({ error: { code: 'not_ready', message: toError(err).message } });
    }
  });
  const metrics = metricsSource(deps.registry);
  app.get('/metrics', async (_req, res) => {
    res.type(deps.registry.contentType).send(await metrics());
  });
}

/** A listening HTTP server. */
export interface Listening {
  server: Server;
  port: number;
  url: string;
  /** Stops accepting, ends idle keep-alive connections, and resolves once open requests end. */
  close(): Promise<void>;
}

/** Starts an HTTP server answering with `handler` (an Express app, say) on `host:port` (0: any). */
export async function listen(
  handler: RequestListener,
  port: number,
  host: string,
): Promise<Listening> {
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    server,
    port: bound,
    url: `http://${host}:${bound}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
