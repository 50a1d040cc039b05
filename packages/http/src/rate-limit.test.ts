import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import express from 'express';
import { Registry } from 'prom-client';
import { keyDigest } from '@memfleet/config/api-keys';
import { createLogger } from '@memfleet/logger/create-logger';
import { createRateLimitMetrics } from '@memfleet/metrics/rate-limit-metrics';
import { createRedisClient, type RedisClient } from '@memfleet/redis/connect-redis';
import { createAuthenticator, requireTenant } from './auth.ts';
import { errorHandler, listen, type Listening } from './http-basics.ts';
import { rateLimited, tenantRateLimit } from './rate-limit.ts';

const KEY = 'acme-key-0123456789abcdef';

interface LogLine {
  level: string;
  message: string;
  limit?: string;
  err?: { message: string };
}

/** A TCP port nothing listens on: bound by the system, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * A TCP server that accepts connections and never answers: a Redis that hangs. Sockets are
 * destroyed on close so the client sees the connection end.
 */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/**
 * The API's own chain for a limited route: tenant auth, the limiter (1 request/s, no burst, so a
 * working limiter answers the second request 429), the handler, and the API's error handler (which
 * would turn a limiter error into a 5xx). `clock.ms` is the limiter's clock for its failure
 * warnings: the requests of a test take no time by it, however slow the machine, and a test moves
 * it on by hand.
 */
async function limitedApp(redis: RedisClient, timeoutMs: number, clock = { ms: 1_000_000 }) {
  const registry = new Registry();
  const metrics = createRateLimitMetrics(registry);
  const stream = new PassThrough();
  const lines: LogLine[] = [];
  stream.on('data', (chunk: Buffer) => {
    for (const l of chunk.toString('utf8').split('\n')) {
      if (l !== '') lines.push(JSON.parse(l) as LogLine);
    }
  });
  const logger = createLogger({ service: 'test', stream });
  const app = express();
  app.post(
    '/v1/threads/:id/messages',
    requireTenant(
      createAuthenticator(
        [{ tenant: 'acme', digest: keyDigest(KEY), scopes: ['read', 'write'] }],
        keyDigest('admin-key-0123456789abcdef'),
      ),
      'write',
    ),
    rateLimited(
      tenantRateLimit({
        name: 'enqueue',
        settings: { perSecond: 1, burst: 0 },
        redis,
        prefix: 'rl-test',
        metrics,
        logger,
        timeoutMs,
        now: () => clock.ms,
      }),
    ),
    (_req, res) => {
      res.status(202).json({ ok: true });
    },
  );
  app.use(errorHandler({ bodyLimitBytes: 1024, logger, unavailableMessage: 'retry later' }));
  const server = await listen(app, 0, '127.0.0.1');
  return { server, registry, lines };
}

async function postTimes(server: Listening, times: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < times; i++) {
    const res = await fetch(`${server.url}/v1/threads/t-1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}` },
    });
    await res.arrayBuffer();
    statuses.push(res.status);
  }
  return statuses;
}

async function counterValues(registry: Registry, name: string) {
  return (await registry.getSingleMetric(name)?.get())?.values ?? [];
}

describe('tenantRateLimit with Redis away (fails open)', () => {
  let redis: RedisClient | undefined;
  let server: Listening | undefined;
  let silent: { close(): Promise<void> } | undefined;

  afterEach(async () => {
    await server?.close();
    redis?.disconnect();
    await silent?.close();
    server = undefined;
    redis = undefined;
    silent = undefined;
  });

  it('lets every request through when Redis refuses connections, and counts and logs it', async () => {
    // The API's client options: one retry per command, then the command fails.
    redis = createRedisClient(
      { kind: 'single', url: `redis://127.0.0.1:${String(await closedPort())}` },
      { maxRetriesPerRequest: 1, enableAutoPipelining: true },
    );
    redis.on('error', () => undefined);
    const clock = { ms: 1_000_000 };
    const app = await limitedApp(redis, 5000, clock);
    server = app.server;

    expect(await postTimes(server, 3)).to.deep.equal([202, 202, 202]);
    expect(await counterValues(app.registry, 'memfleet_rate_limiter_failures_total')).to.deep.equal(
      [{ value: 3, labels: { limit: 'enqueue' } }],
    );
    expect(await counterValues(app.registry, 'memfleet_rate_limited_requests_total')).to.deep.equal(
      [],
    );
    // One warning a second, not one per request.
    const warnings = app.lines.filter((l) => l.level === 'warn');
    expect(warnings).to.have.length(1);
    clock.ms += 1000;
    expect(await postTimes(server, 1)).to.deep.equal([202]);
    expect(app.lines.filter((l) => l.level === 'warn')).to.have.length(1);
    clock.ms += 1;
    expect(await postTimes(server, 1)).to.deep.equal([202]);
    expect(app.lines.filter((l) => l.level === 'warn')).to.have.length(2);
    expect(warnings[0]).to.include({
      message: 'rate limiter failed; letting requests through',
      limit: 'enqueue',
    });
    expect(warnings[0]?.err?.message).to.match(/ECONNREFUSED|max retries|Connection is closed/i);
    expect(app.lines.filter((l) => l.level === 'error')).to.deep.equal([]);
  });

  it('lets every request through when Redis accepts connections but never answers', async () => {
    const hanging = await silentServer();
    silent = hanging;
    redis = createRedisClient(
      { kind: 'single', url: `redis://127.0.0.1:${String(hanging.port)}` },
      { maxRetriesPerRequest: 1, enableAutoPipelining: true },
    );
    redis.on('error', () => undefined);
    const app = await limitedApp(redis, 100);
    server = app.server;

    expect(await postTimes(server, 3)).to.deep.equal([202, 202, 202]);
    expect(await counterValues(app.registry, 'memfleet_rate_limiter_failures_total')).to.deep.equal(
      [{ value: 3, labels: { limit: 'enqueue' } }],
    );
    const warnings = app.lines.filter((l) => l.level === 'warn');
    expect(warnings).to.have.length(1);
    expect(warnings[0]?.err?.message).to.equal('rate limiter: no answer in 100 ms');
  });
});
