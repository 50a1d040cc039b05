import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { loadConfig } from '@memfleet/config/load-config';
import { createLogger } from '@memfleet/logger/create-logger';
import { createOutbox } from '@memfleet/outbox/outbox';
import { testRedisUrl, uniquePrefix } from '@memfleet/testing/fixtures';
import { httpRequestJson } from '@memfleet/testing/http-request';
import { waitFor } from '@memfleet/testing/wait-for';
import { MAX_BACKEND_READS_IN_FLIGHT, type ContextAnswer } from './read-context.ts';
import { startReader, type ReaderRuntime } from './reader-runtime.ts';

const ACME = 'acme-key-0123456789abcdef';

/** A backend that never answers; it records when each request came and when its client hung up. */
interface HangingBackend {
  url: string;
  calls: { path: string; arrivedAt: number; closedAt?: number }[];
  close(): Promise<void>;
}

async function startHangingBackend(): Promise<HangingBackend> {
  const calls: HangingBackend['calls'] = [];
  const server: Server = createServer((req, res) => {
    const call: HangingBackend['calls'][number] = {
      path: req.url ?? '',
      arrivedAt: performance.now(),
    };
    calls.push(call);
    req.resume();
    res.on('close', () => {
      call.closedAt = performance.now();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${String(port)}/api/v2`,
    calls,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('reader: a hanging backend (real Redis)', function () {
  this.timeout(60_000);
  let backend: HangingBackend;
  let redis: Redis;
  let reader: ReaderRuntime;
  let prefix: string;
  let logs: string[];

  async function start(env: Record<string, string>): Promise<void> {
    const config = loadConfig({
      REDIS_URL: await testRedisUrl(),
      REDIS_KEY_PREFIX: prefix,
      DATABASE_URL: 'postgres://nobody@127.0.0.1:9/none',
      MEMFLEET_API_KEYS: `acme:${ACME}`,
      MEMFLEET_ADMIN_KEY: 'admin-key-0123456789abcdef',
      MEMORY_BACKEND: 'zep',
      ZEP_API_URL: backend.url,
      ZEP_API_KEY: 'zep-key',
      READER_PORT: '0',
      ...env,
    });
    const stream = new PassThrough();
    stream.on('data', (chunk: Buffer) => logs.push(...chunk.toString('utf8').split('\n')));
    reader = await startReader(config, createLogger({ service: 'reader', stream }));
  }

  async function read(threadId: string): Promise<ContextAnswer> {
    const res = await httpRequestJson(`${reader.url}/v1/threads/${threadId}/context?user_id=u1`, {
      headers: { authorization: `Bearer ${ACME}` },
    });
    expect(res.status).to.equal(200);
    return res.json as ContextAnswer;
  }

  const slowLines = () =>
    logs
      .filter((l) => l.includes('"message":"context_slow"'))
      .map((l) => JSON.parse(l) as { suppressed: number });

  beforeEach(async () => {
    backend = await startHangingBackend();
    redis = new Redis(await testRedisUrl());
    prefix = uniquePrefix();
    logs = [];
    const outbox = createOutbox(redis, { prefix, recentMessages: 4 });
    for (let t = 0; t < MAX_BACKEND_READS_IN_FLIGHT + 10; t++) {
      await outbox.append(
        'acme',
        `t${String(t)}`,
        'u1',
        [
          {
            clientMessageId: `t${String(t)}-m0`,
            body: JSON.stringify({ role: 'user', content: 'hello', created_at: '', metadata: {} }),
          },
        ],
        Date.now(),
      );
    }
  });

  afterEach(async () => {
    await reader.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await backend.close();
  });

  it('hangs up on the backend before the budget ends and answers the fallback', async () => {
    await start({});
    const answer = await read('t0');
    const answeredAt = performance.now();
    expect(answer).to.include({ used: false, source: 'fallback', reason: 'timeout' });
    expect(answer.messages.map((m) => m.content)).to.deep.equal(['hello']);
    await waitFor('the backend call closed', () => backend.calls[0]?.closedAt !== undefined);
    expect(backend.calls).to.have.length(1);
    // The reader hangs up when it gives up on the call, 50 ms before the 250 ms budget ends, and
    // answers right after; the backend's own timeout (the whole budget) would hang up only about
    // 50 ms after the answer.
    expect((backend.calls[0]?.closedAt ?? Infinity) - answeredAt).to.be.below(25);
  });

  it("a read that joined a call cancelled at the first read's deadline answers timeout", async () => {
    await start({});
    const first = read('t0');
    await waitFor('the backend call', () => backend.calls.length === 1);
    const second = read('t0');
    expect(await first).to.include({ reason: 'timeout' });
    expect(await second).to.include({ used: false, reason: 'timeout' });
    expect(backend.calls).to.have.length(1);
  });

  it(`keeps at most ${String(MAX_BACKEND_READS_IN_FLIGHT)} backend reads open; the rest fall back at once`, async () => {
    // A long budget keeps the first calls open while the rest arrive; the breaker stays closed.
    await start({ READ_BUDGET_MS: '3000', READ_BREAKER_FAILURES: '10000' });
    const threads = Array.from(
      { length: MAX_BACKEND_READS_IN_FLIGHT + 8 },
      (_, t) => `t${String(t)}`,
    );
    const answers = await Promise.all(threads.map((t) => read(t)));
    const reasons = answers.map((a) => a.reason);
    expect(reasons.filter((r) => r === 'timeout')).to.have.length(MAX_BACKEND_READS_IN_FLIGHT);
    expect(reasons.filter((r) => r === 'breaker_open')).to.have.length(8);
    expect(backend.calls).to.have.length(MAX_BACKEND_READS_IN_FLIGHT);
    for (const a of answers) expect(a.messages.map((m) => m.content)).to.deep.equal(['hello']);
    // The refused reads did not wait for the others' calls.
    const refused = answers.filter((a) => a.reason === 'breaker_open');
    const waited = answers.filter((a) => a.reason === 'timeout');
    expect(Math.max(...refused.map((a) => a.took_ms))).to.be.below(
      Math.min(...waited.map((a) => a.took_ms)),
    );

    // Once those calls are closed, the slots are free again.
    await waitFor('the calls closed', () => backend.calls.every((c) => c.closedAt !== undefined));
    expect(await read('t0')).to.include({ reason: 'timeout' });
    expect(backend.calls).to.have.length(MAX_BACKEND_READS_IN_FLIGHT + 1);
  });

  it('logs context_slow at most once a second, with the count of those left out', async () => {
    await start({ READ_BREAKER_FAILURES: '10000' });
    const burst = await Promise.all(['t0', 't1', 't2', 't3'].map((t) => read(t)));
    expect(burst.every((a) => a.reason === 'timeout')).to.equal(true);
    expect(slowLines()).to.have.length(1);
    expect(slowLines()[0]).to.include({ suppressed: 0 });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await read('t4')).to.include({ reason: 'timeout' });
    expect(slowLines()).to.have.length(2);
    expect(slowLines()[1]).to.include({ suppressed: 3 });
  });
});
