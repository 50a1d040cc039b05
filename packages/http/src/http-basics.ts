import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
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
 * Gives every request an `x-request-id` (the caller's, if sane) and times it into `duration` by
 * route template, method and status.
 */
export function requestContext(
  duration: Histogram<'route' | 'method' | 'status'>,
  logger: Pick<Logger, 'http' | 'isLevelEnabled'>,
): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const logged = logger.isLevelEnabled('http');
    const incoming = req.headers['x-request-id'];
    const requestId =
      typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = requestId;
    res.setHeader('x-request-id', requestId);
    const end = duration.startTimer();
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      const labels = { route, method: req.method, status: String(res.statusCode) };
      end(labels);
      if (logged) logger.http('request', { requestId, ...labels });
    });
    next();
  };
}

/**
 * Answers `status` with `value` as JSON: what `res.json` sends, without the ETag (a hash of every
 * body) and the content negotiation, which API answers have no use for.
 */
export function sendJson(res: Response, status: number, value: unknown): void {
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

/** Answers every error as `{"error":{code,message,fields?}}` with its status. */
export function errorHandler(options: {
  bodyLimitBytes: number;
  logger: Pick<Logger, 'error'>;
  /** Message of a 503, telling the client what to do. */
  unavailableMessage: string;
}): ErrorRequestHandler {
  return (err: unknown, _req, res, _next) => {
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
    res.status(status).json({ error: { code, message, ...(fields ? { fields } : {}) } });
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

/** A listening HTTP server of an Express app. */
export interface Listening {
  server: Server;
  port: number;
  url: string;
  /** Stops accepting, ends idle keep-alive connections, and resolves once open requests end. */
  close(): Promise<void>;
}

/** Starts `app` on `host:port` (port 0 picks a free one). */
export async function listen(app: Express, port: number, host: string): Promise<Listening> {
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, host, (err?: Error) => {
      if (err) reject(err);
      else resolve(s);
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
