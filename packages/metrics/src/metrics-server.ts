import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import helmet from 'helmet';
import type { Registry } from 'prom-client';

/** A small HTTP server for processes without an HTTP API of their own (the worker). */
export interface MetricsServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` (Prometheus text), `/healthz` (alive) and `/readyz` (the `ready` check) on
 * 127.0.0.1 or `host`. Port 0 picks a free port. Every answer carries helmet's default security
 * headers, as the API's and the reader's do (helmet's middleware works on plain `node:http`).
 */
export async function startMetricsServer(options: {
  registry: Registry;
  port: number;
  host?: string;
  ready: () => Promise<boolean>;
}): Promise<MetricsServer> {
  const securityHeaders = helmet();
  const answer = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'content-type': type }).end(body);
    };
    if (req.method !== 'GET') return send(405, 'text/plain', 'method not allowed\n');
    if (path === '/metrics') {
      options.registry
        .metrics()
        .then((text) => send(200, options.registry.contentType, text))
        .catch(() => send(500, 'text/plain', 'metrics unavailable\n'));
      return;
    }
    if (path === '/healthz') return send(200, 'application/json', '{"status":"ok"}');
    if (path === '/readyz') {
      options
        .ready()
        .then((ok) => send(ok ? 200 : 503, 'application/json', JSON.stringify({ ready: ok })))
        .catch(() => send(503, 'application/json', '{"ready":false}'));
      return;
    }
    send(404, 'text/plain', 'not found\n');
  };
  const server = createServer((req, res) => {
    securityHeaders(req, res, (err?: unknown) => {
      if (err === undefined) answer(req, res);
      else res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error\n');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
