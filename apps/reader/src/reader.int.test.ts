import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '@memfleet/config/load-config';
import { createFlags } from '@memfleet/flags/flags';
import { createLogger } from '@memfleet/logger/create-logger';
import { createBackendGate } from '@memfleet/memory/backend-gate';
import { createZepBackend } from '@memfleet/memory/zep-backend';
import { createOutbox } from '@memfleet/outbox/outbox';
import { outboxKeys } from '@memfleet/outbox/outbox-keys';
import { testRedisUrl, uniquePrefix } from '@memfleet/testing/fixtures';
import { httpRequestJson } from '@memfleet/testing/http-request';
import { waitForValue } from '@memfleet/testing/wait-for';
import { startZepEmulator, type ZepEmulator } from '@memfleet/testing/zep-emulator';
import { startReader, type ReaderRuntime } from './reader-runtime.ts';
import type { ContextAnswer } from './read-context.ts';

const ACME = 'acme-key-0123456789abcdef';
const GLOBEX = 'globex-key-0123456789abc';
const ACME_WRITE_ONLY = 'acme-write-only-0123456789';
const ZEP_KEY = 'zep-reader-key';
const ref = { tenant: 'acme', userId: 'u1', threadId: 't1' };

describe('reader: context within the budget (Zep emulator, real Redis)', function () {
  this.timeout(60_000);
  let emu: ZepEmulator;
  let redis: Redis;
  let reader: ReaderRuntime;
  let config: Config;
  let logs: string[];
  let prefix: string;

  async function read(
    threadId = 't1',
    query = '?user_id=u1',
    key = ACME,
  ): Promise<{ status: number; body: ContextAnswer; elapsedMs: number }> {
    const t0 = performance.now();
    const res = await httpRequestJson(`${reader.url}/v1/threads/${threadId}/context${query}`, {
      headers: { authorization: `Bearer ${key}` },
    });
    return {
      status: res.status,
      body: res.json as ContextAnswer,
      elapsedMs: performance.now() - t0,
    };
  }

  const contextCalls = () =>
    emu.requests.filter((r) => r.method === 'GET' && r.path === '/threads/acme:t1/context');

  beforeEach(async () => {
    emu = await startZepEmulator({ apiKeys: [ZEP_KEY] });
    redis = new Redis(await testRedisUrl());
    prefix = uniquePrefix();
    config = loadConfig({
      REDIS_URL: await testRedisUrl(),
      REDIS_KEY_PREFIX: prefix,
      // The zep backend never touches Postgres; the reader's pool connects only on use.
      DATABASE_URL: 'postgres://nobody@127.0.0.1:9/none',
      MEMFLEET_API_KEYS: `acme:${ACME},globex:${GLOBEX},acme:${ACME_WRITE_ONLY}:write`,
      MEMFLEET_ADMIN_KEY: 'admin-key-0123456789abcdef',
      MEMORY_BACKEND: 'zep',
      ZEP_API_URL: emu.url,
      ZEP_API_KEY: ZEP_KEY,
      READER_PORT: '0',
      FLAGS_REFRESH_MS: '200',
    });
    // The thread as the API records it: owner and the last accepted messages.
    const outbox = createOutbox(redis, { prefix, recentMessages: 4 });
    await outbox.append(
      'acme',
      't1',
      'u1',
      ['one', 'two', 'three', 'four', 'five', 'six'].map((w, i) => ({
        clientMessageId: `m${i}`,
        body: JSON.stringify({
          role: i % 2 === 0 ? 'user' : 'assistant',
          content: `message ${w}`,
          created_at: `2026-11-21T10:00:0${i}.000Z`,
          metadata: {},
        }),
      })),
      Date.now(),
    );
    // And as the workers wrote it to Zep.
    const zep = createZepBackend({ apiKey: ZEP_KEY, apiUrl: emu.url, timeoutMs: 2000 });
    await zep.ensureUser(ref);
    await zep.ensureThread(ref);
    await zep.addMessages(ref, [
      {
        clientMessageId: 'm0',
        role: 'user',
        content: 'I drink green tea every morning',
        createdAt: '2026-11-21T10:00:00.000Z',
        metadata: {},
      },
    ]);
    logs = [];
    const stream = new PassThrough();
    stream.on('data', (chunk: Buffer) => logs.push(...chunk.toString('utf8').split('\n')));
    reader = await startReader(config, createLogger({ service: 'reader', stream }));
  });

  afterEach(async () => {
    await reader.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await emu.close();
  });

  it('answers from the backend, then from the cache', async () => {
    emu.inject({ kind: 'delay', ms: 20, times: Infinity, match: { method: 'GET' } });
    const first = await read();
    expect(first.status).to.equal(200);
    expect(first.body).to.include({ used: true, source: 'zep', mode: 'read_write' });
    expect(first.body.context).to.include('green tea');
    // Messages come from memfleet's own record of the thread, the context from Zep.
    expect(first.body.messages.map((m) => m.content)).to.deep.equal([
      'message three',
      'message four',
      'message five',
      'message six',
    ]);
    expect(
      emu.requests.filter((r) => r.method === 'GET' && r.path === '/threads/acme:t1/messages'),
    ).to.have.length(0);
    const second = await read();
    expect(second.body).to.include({ used: true, source: 'cache' });
    expect(second.body.context).to.equal(first.body.context);
    expect(second.body.messages).to.deep.equal(first.body.messages);
    expect(contextCalls()).to.have.length(1);
  });

  it('answers within the budget when the backend hangs, with the last 4 messages, and logs context_slow', async () => {
    emu.inject({ kind: 'delay', ms: 10_000, times: Infinity, match: { method: 'GET' } });
    const res = await read();
    expect(res.status).to.equal(200);
    expect(res.body).to.include({ used: false, source: 'fallback', reason: 'timeout' });
    expect(res.body.took_ms).to.be.at.most(250 + 20);
    expect(res.body.messages.map((m) => m.content)).to.deep.equal([
      'message three',
      'message four',
      'message five',
      'message six',
    ]);
    expect(res.body.messages[0]).to.include({
      role: 'user',
      created_at: '2026-11-21T10:00:02.000Z',
    });
    expect(logs.some((l) => l.includes('"message":"context_slow"'))).to.equal(true);
  });

  it('falls back without calling the backend while the breaker is open', async () => {
    const gate = createBackendGate(redis, {
      prefix,
      backend: 'zep',
      settings: {
        failureThreshold: 1,
        windowMs: 10_000,
        cooldownMs: 60_000,
        authRetryMs: 60_000,
        rateLimitDefaultMs: 1000,
        probeTtlMs: 1000,
      },
    });
    await gate.failure('transient', false);
    const res = await read();
    expect(res.body).to.include({ used: false, source: 'fallback', reason: 'breaker_open' });
    expect(res.body.messages).to.have.length(4);
    expect(contextCalls()).to.have.length(0);
  });

  it('opens its read breaker after reads over budget, then answers at once without calling', async () => {
    emu.inject({ kind: 'delay', ms: 10_000, times: Infinity, match: { method: 'GET' } });
    for (let i = 0; i < 5; i++) {
      expect((await read()).body.reason).to.equal('timeout');
    }
    const calls = contextCalls().length;
    const res = await read();
    expect(res.body).to.include({ used: false, reason: 'breaker_open' });
    expect(res.body.messages).to.have.length(4);
    expect(contextCalls()).to.have.length(calls);
  });

  it('falls back with reason error when the backend fails', async () => {
    emu.inject({ kind: 'status', status: 500, times: Infinity, match: { method: 'GET' } });
    const res = await read();
    expect(res.body).to.include({ used: false, reason: 'error' });
    expect(res.body.messages).to.have.length(4);
  });

  it('answers without the part of the thread it cannot read, and logs which part', async () => {
    await redis.set(outboxKeys(prefix).recent('acme', 't1'), 'not a list');
    const res = await read();
    expect(res.status).to.equal(200);
    expect(res.body).to.include({ used: true, source: 'zep' });
    expect(res.body.messages).to.deep.equal([]);
    const line = logs.find((l) => l.includes('part of the thread unreadable'));
    expect(line).to.include('"recent"');
  });

  it('shares one backend call among 100 concurrent identical reads on a cold cache', async () => {
    emu.inject({ kind: 'delay', ms: 50, times: Infinity, match: { method: 'GET' } });
    const answers = await Promise.all(Array.from({ length: 100 }, () => read()));
    expect(answers.every((a) => a.status === 200 && a.body.used)).to.equal(true);
    expect(contextCalls()).to.have.length(1);
  });

  it('honours the mode and the canary', async () => {
    const flags = createFlags(redis, {
      prefix,
      defaults: { mode: 'read_write', canaryPercent: 100 },
      refreshMs: 200,
      downgradeMs: 60_000,
      downgradeAuthFailures: 3,
    });
    try {
      await flags.update({ mode: 'write_only' });
      const off = await waitForValue('the answer', read, (a) => a.body.reason === 'mode_off');
      expect(off.body).to.include({ used: false, mode: 'write_only', source: 'fallback' });
      expect(off.body.messages).to.have.length(4);
      await flags.update({ mode: null, canaryPercent: 0 });
      const out = await waitForValue('the answer', read, (a) => a.body.reason === 'not_in_canary');
      expect(out.body).to.include({ used: false, mode: 'read_write', source: 'fallback' });
      // Neither answer asked the backend (reads before the reader saw the change may have).
      const calls = contextCalls().length;
      await read();
      expect(contextCalls()).to.have.length(calls);
    } finally {
      flags.stop();
    }
  });

  it('never shows a thread to another tenant or user; checks its input', async () => {
    expect((await read('t1', '?user_id=u1', GLOBEX)).status).to.equal(404);
    expect((await read('t1', '?user_id=u2')).status).to.equal(404);
    expect((await read('nope')).status).to.equal(404);
    const missing = await read('t1', '');
    expect(missing.status).to.equal(400);
    expect(JSON.stringify(missing.body)).to.include('user_id: required');
    expect((await read('t1', '?user_id=u1', 'not-a-key-0123456789')).status).to.equal(401);
    const writeOnly = await read('t1', '?user_id=u1', ACME_WRITE_ONLY);
    expect(writeOnly.status).to.equal(403);
    expect(JSON.stringify(writeOnly.body)).to.include('API key lacks the read scope');
    const admin = await read('t1', '?user_id=u1', 'admin-key-0123456789abcdef');
    expect(admin.status).to.equal(403);
    expect(contextCalls()).to.have.length(0);
  });

  it('answers every read alike with and without Express', async () => {
    // `/v1/threads/{id}/context` is answered straight from Node's HTTP server; the same path with
    // a trailing slash is left to Express. Both must answer alike.
    const cases: [string, string, string][] = [
      ['t1', '?user_id=u1', ACME],
      ['t1', '?user_id=u1', GLOBEX],
      ['t1', '?user_id=u2', ACME],
      ['t1', '', ACME],
      ['t1', '?user_id=u1&user_id=u2', ACME],
      ['t%01', '?user_id=u1', ACME],
      ['t1', '?user_id=u1', 'not-a-key-0123456789'],
      ['t1', '?user_id=u1', ACME_WRITE_ONLY],
      ['t1', '?user_id=u1', 'admin-key-0123456789abcdef'],
    ];
    const SAME_ANYWAY = new Set(['date', 'x-request-id', 'content-length', 'connection']);
    const get = (path: string, key: string) =>
      httpRequestJson(`${reader.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
    const routeCount = async () => {
      const text = (await httpRequestJson(`${reader.url}/metrics`)).text;
      return text
        .split('\n')
        .filter(
          (l) =>
            l.startsWith('memfleet_http_request_duration_seconds_count{') &&
            l.includes('route="/v1/threads/:thread_id/context"'),
        )
        .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
    };
    const before = await routeCount();
    for (const [thread, query, key] of cases) {
      const direct = await get(`/v1/threads/${thread}/context${query}`, key);
      const viaExpress = await get(`/v1/threads/${thread}/context/${query}`, key);
      const what = `${thread}${query} as ${key}`;
      expect(direct.status, what).to.equal(viaExpress.status);
      if (direct.status === 200) {
        expect(direct.json, what).to.include({ used: true });
        expect(viaExpress.json, what).to.include({ used: true });
      } else {
        expect(direct.text, what).to.equal(viaExpress.text);
      }
      const headersOf = (h: Record<string, string | string[] | undefined>) =>
        Object.entries(h).filter(([k]) => !SAME_ANYWAY.has(k));
      expect(headersOf(direct.headers), what).to.deep.equal(headersOf(viaExpress.headers));
      expect(direct.headers['x-request-id'], what).to.be.a('string');
    }
    expect((await routeCount()) - before).to.equal(2 * cases.length);
  });
});
