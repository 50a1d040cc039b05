import { Agent, request as httpRequest } from 'node:http';
import { expect } from 'chai';
import fc from 'fast-check';
import { ACME, ADMIN, GLOBEX, startTestApi, type TestApi } from './test-api.fixture.ts';

const BODY_LIMIT = 64 * 1024;
const CONTENT_MAX = 2000;
const HOSTILE_REQUESTS = 10_000;
const CONCURRENCY = 16;
/** Every this many hostile requests, a valid one of the other tenant goes in between. */
const VALID_EVERY = 100;

interface RawRequest {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

interface RawResponse {
  status: number;
  text: string;
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const valid = (id: string) => ({ client_message_id: id, role: 'user', content: `hello ${id}` });
const tenantHeaders = { authorization: `Bearer ${ACME}`, 'content-type': 'application/json' };
const POST_PATH = '/v1/threads/t-hostile/messages';

/** Strings that break naive handling: lone surrogates, NUL, RTL overrides, emoji, BOMs. */
const edgeString = fc.oneof(
  fc.constantFrom(
    '\ud800',
    '\udfff',
    'a\u0000b',
    '\u202eevil\u202c',
    '\u200b\u200d\ufeff',
    '👩‍👩‍👧‍👦',
    '\u0301\u0301\u0301',
    '\uffff\ufffe',
    '𝕏'.repeat(50),
  ),
  fc.string({ unit: 'binary', maxLength: 30 }),
);

const protoKey = fc.constantFrom('__proto__', 'constructor', 'prototype');

/** Nested containers around `inner`, as JSON text, without building the value (10 000 levels). */
const nestedText = (depth: number, inner: string) =>
  `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;

/** A well-formed message with exactly one defect, its strings full of edge cases. */
const brokenBody = fc
  .tuple(
    edgeString,
    edgeString,
    fc.constantFrom(
      'unknown-key',
      'proto-message',
      'proto-top',
      'proto-metadata',
      'bad-role',
      'empty-content',
      'long-content',
      'control-id',
      'long-id',
      'no-messages',
      'empty-messages',
      'too-many',
      'bad-date',
      'metadata-array',
      'deep-metadata',
    ),
    protoKey,
  )
  .map(([s1, s2, defect, key]) => {
    const m: Record<string, unknown> = {
      client_message_id: `m-${s1}`,
      role: 'user',
      content: `x ${s2}`,
      name: `n${s1}`,
    };
    const body: Record<string, unknown> = { user_id: `u-${s2}`, messages: [m] };
    let text: string | undefined;
    switch (defect) {
      case 'unknown-key':
        m[`extra${s1}`] = s2;
        break;
      case 'proto-message':
        text = JSON.stringify(body).replace('"role"', `${JSON.stringify(key)}:{"x":1},"role"`);
        break;
      case 'proto-top':
        text = JSON.stringify(body).replace(
          '"user_id"',
          `${JSON.stringify(key)}:{"x":1},"user_id"`,
        );
        break;
      case 'proto-metadata':
        text = JSON.stringify(body).replace(
          '"role"',
          `"metadata":{"a":{"b":{${JSON.stringify(key)}:{"polluted":true}}}},"role"`,
        );
        break;
      case 'bad-role':
        m.role = s1 === 'user' ? 'robot' : s1;
        break;
      case 'empty-content':
        m.content = ' \n\t ';
        break;
      case 'long-content':
        m.content = 'y'.repeat(CONTENT_MAX + 1);
        break;
      case 'control-id':
        m.client_message_id = `m\u0000${s1}`;
        break;
      case 'long-id':
        body.user_id = 'u'.repeat(257);
        break;
      case 'no-messages':
        delete body.messages;
        break;
      case 'empty-messages':
        body.messages = [];
        break;
      case 'too-many':
        body.messages = Array.from({ length: 101 }, (_, i) => valid(`m${String(i)}`));
        break;
      case 'bad-date':
        m.created_at = `2026-13-45T99:00:00${s2}`;
        break;
      case 'metadata-array':
        m.metadata = [s1, s2];
        break;
      case 'deep-metadata':
        text = JSON.stringify(body).replace(
          '"role"',
          `"metadata":{"a":${nestedText(10_000, '1')}},"role"`,
        );
        break;
    }
    return { kind: `body:${defect}`, body: Buffer.from(text ?? JSON.stringify(body)) };
  });

const hostile: fc.Arbitrary<RawRequest> = fc.oneof(
  // Random JSON of any shape.
  fc.jsonValue({ maxDepth: 4 }).map((v) => ({
    kind: 'random-json',
    method: 'POST',
    path: POST_PATH,
    headers: tenantHeaders,
    body: Buffer.from(JSON.stringify(v) ?? 'null'),
  })),
  // One defect in an otherwise plausible body.
  brokenBody.map(({ kind, body }) => ({
    kind,
    method: 'POST',
    path: POST_PATH,
    headers: tenantHeaders,
    body,
  })),
  // Not JSON at all, or broken JSON, or bytes that are not UTF-8 (overlong encodings).
  fc
    .oneof(
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
      fc.constantFrom(
        Buffer.from('{"user_id":'),
        Buffer.from([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x3a, 0x31, 0x7d]),
        Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d, 0xff, 0xfe]),
        Buffer.from('\u0000'),
        Buffer.from(''),
      ),
    )
    .map((body) => ({
      kind: 'not-json',
      method: 'POST',
      path: POST_PATH,
      headers: tenantHeaders,
      body,
    })),
  // Deep nesting of the whole body: 10 000 levels, and as deep as the body limit allows.
  fc.constantFrom(10_000, 30_000, BODY_LIMIT).map((depth) => ({
    kind: `deep-${String(depth)}`,
    method: 'POST',
    path: POST_PATH,
    headers: tenantHeaders,
    body: Buffer.from(nestedText(Math.floor(depth / 2), '{}')),
  })),
  // Huge strings, just under and over the body limit.
  fc.integer({ min: BODY_LIMIT - 200, max: BODY_LIMIT + 4096 }).map((size) => ({
    kind: 'huge',
    method: 'POST',
    path: POST_PATH,
    headers: tenantHeaders,
    body: json({ user_id: 'u1', messages: [valid('m1')], pad: 'z'.repeat(size) }),
  })),
  // Wrong content types.
  fc
    .constantFrom(
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/json; charset=utf-16',
      'application/json; charset=latin1',
      '',
    )
    .map((type) => ({
      kind: `type:${type}`,
      method: 'POST',
      path: POST_PATH,
      headers: { authorization: `Bearer ${ACME}`, 'content-type': type },
      body: json({ user_id: 'u1', messages: [valid('m-type')] }),
    })),
  // Bodies compressed with an encoding the API does not take, or claiming gzip and not being it.
  fc.constantFrom('gzip', 'br', 'x-custom').map((encoding) => ({
    kind: `encoding:${encoding}`,
    method: 'POST',
    path: POST_PATH,
    headers: { ...tenantHeaders, 'content-encoding': encoding },
    body: Buffer.from('not compressed at all'),
  })),
  // Bad paths and thread ids.
  fc
    .oneof(
      fc.constantFrom(
        '/v1/threads/%00/messages',
        '/v1/threads/a%0Ab/messages',
        `/v1/threads/${'t'.repeat(257)}/messages`,
        '/v1/threads//messages',
        '/v1/threads/%ZZ/messages',
        '/v1/threads/__proto__/messages/../../admin/flags',
        '/v1/threads/t/messages/extra',
        '/v1/thread/t/messages',
        '/v1/__proto__',
        '/%2e%2e/%2e%2e/etc/passwd',
      ),
      edgeString.map(
        (s) => `/v1/threads/${encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '?'))}%00/messages`,
      ),
    )
    .map((path) => ({
      kind: 'path',
      method: 'POST',
      path,
      headers: tenantHeaders,
      body: json({ user_id: 'u1', messages: [valid('m-path')] }),
    })),
  // Wrong methods.
  fc.constantFrom('PUT', 'PATCH', 'GET', 'OPTIONS').map((method) => ({
    kind: `method:${method}`,
    method,
    path: POST_PATH,
    headers: tenantHeaders,
    body: json({ user_id: 'u1', messages: [valid('m-method')] }),
  })),
  // Missing, unknown, malformed and wrong-scope keys.
  fc
    .oneof(
      fc.constantFrom<Record<string, string>>(
        {},
        { authorization: '' },
        { authorization: 'Bearer' },
        { authorization: 'Bearer wrong-key-0123456789abcdef' },
        { authorization: `Basic ${Buffer.from(`acme:${ACME}`).toString('base64')}` },
        { authorization: `Bearer ${ADMIN}` },
        { authorization: `Bearer ${ACME.slice(0, -1)}` },
        { authorization: `Bearer ${ACME} ${ACME}` },
      ),
      fc
        .string({ unit: 'grapheme-ascii', maxLength: 60 })
        .map((k) => ({ authorization: `Bearer ${k.replace(/[^\x21-\x7e]/g, '')}x` })),
    )
    .map((auth) => ({
      kind: 'auth',
      method: 'POST',
      path: POST_PATH,
      headers: { 'content-type': 'application/json', ...auth },
      body: json({ user_id: 'u1', messages: [valid('m-auth')] }),
    })),
);

function send(agent: Agent, base: URL, r: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: base.hostname,
        port: base.port,
        method: r.method,
        path: r.path,
        agent,
        headers: { ...r.headers, ...(r.body ? { 'content-length': String(r.body.length) } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
      },
    );
    req.on('error', reject);
    req.end(r.body);
  });
}

describe('hostile requests (10 000 generated, real Redis and Postgres)', function () {
  this.timeout(120_000);
  let fixture: TestApi;

  before(async () => {
    fixture = await startTestApi({
      API_BODY_LIMIT_BYTES: String(BODY_LIMIT),
      MESSAGE_CONTENT_MAX_CHARS: String(CONTENT_MAX),
      RATE_LIMIT_ENQUEUE_PER_S: '0',
      RATE_LIMIT_READ_PER_S: '0',
    });
  });

  after(async () => {
    await fixture.stop();
  });

  it('answers every one with a 4xx naming the field, stores none and keeps serving', async () => {
    const requests = fc.sample(hostile, { seed: 20_261_121, numRuns: HOSTILE_REQUESTS });
    const base = new URL(fixture.api.url);
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const histogram = new Map<number, number>();
    const byKind = new Map<string, Set<number>>();
    const failures: string[] = [];
    const validIds: string[] = [];
    let next = 0;

    const worker = async () => {
      for (let i = next++; i < requests.length; i = next++) {
        const r = requests[i];
        if (r === undefined) continue;
        let res: RawResponse;
        try {
          res = await send(agent, base, r);
        } catch (err: unknown) {
          // The API may close a connection after refusing a body it did not read (413): retry on
          // a fresh socket once, so only a server that stops answering counts as a failure.
          try {
            res = await send(new Agent({ keepAlive: false }), base, r);
          } catch {
            failures.push(`${r.kind} ${r.path}: no answer (${String(err)})`);
            continue;
          }
        }
        histogram.set(res.status, (histogram.get(res.status) ?? 0) + 1);
        const statuses = byKind.get(r.kind) ?? new Set<number>();
        statuses.add(res.status);
        byKind.set(r.kind, statuses);
        if (res.status < 400 || res.status >= 500) {
          failures.push(`${r.kind} ${r.path}: ${String(res.status)} ${res.text.slice(0, 200)}`);
        } else if (res.status !== 404 || res.text.startsWith('{')) {
          const error = (JSON.parse(res.text) as { error?: { code?: unknown; message?: unknown } })
            .error;
          if (typeof error?.code !== 'string' || typeof error.message !== 'string') {
            failures.push(`${r.kind}: error shape ${res.text.slice(0, 200)}`);
          } else if (res.status === 400 && !/^[\w[\].]+: /.test(error.message)) {
            failures.push(`${r.kind}: 400 without a field: ${error.message}`);
          }
        }
        if (i % VALID_EVERY === 0) {
          const id = `valid-${String(i)}`;
          const ok = await send(agent, base, {
            kind: 'valid',
            method: 'POST',
            path: '/v1/threads/t-valid/messages',
            headers: { authorization: `Bearer ${GLOBEX}`, 'content-type': 'application/json' },
            body: json({ user_id: 'u-valid', messages: [valid(id)] }),
          });
          if (ok.status !== 202) failures.push(`valid ${id}: ${String(ok.status)} ${ok.text}`);
          validIds.push(id);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    agent.destroy();

    const summary = Object.fromEntries([...histogram].sort(([a], [b]) => a - b));
    console.log(`      hostile statuses: ${JSON.stringify(summary)}`);
    expect(failures.slice(0, 20)).to.deep.equal([]);
    expect([...histogram.values()].reduce((a, b) => a + b, 0)).to.equal(HOSTILE_REQUESTS);
    expect([...histogram.keys()].every((s) => s >= 400 && s < 500)).to.equal(true);
    // Each family got the answer it deserves.
    expect(byKind.get('auth')).to.satisfy((s: Set<number>) =>
      [...s].every((x) => x === 401 || x === 403),
    );
    expect(byKind.get('huge')).to.satisfy((s: Set<number>) => s.has(413));
    expect(byKind.get('type:text/plain')).to.deep.equal(new Set([415]));
    expect(byKind.get('deep-10000')).to.deep.equal(new Set([400]));
    expect(byKind.get('body:deep-metadata')).to.deep.equal(new Set([400]));

    // Still alive, prototypes clean.
    const health = await send(new Agent({ keepAlive: false }), base, {
      kind: 'health',
      method: 'GET',
      path: '/healthz',
      headers: {},
    });
    expect(health.status).to.equal(200);
    expect(Object.keys(Object.prototype)).to.deep.equal([]);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);

    // Nothing of the hostile tenant reached Redis; every valid message of the other one did.
    const keys = await fixture.redis.keys(`${fixture.prefix}*`);
    expect(keys.filter((k) => k.includes(':acme:'))).to.deep.equal([]);
    const pending = await fixture.redis.zrange(`${fixture.prefix}:pending`, 0, -1);
    expect(pending.filter((m) => m.includes('acme'))).to.deep.equal([]);
    expect(validIds.length).to.be.greaterThan(0);
    for (const id of validIds) {
      expect(await fixture.redis.exists(`${fixture.prefix}:msg:globex:${id}`), id).to.equal(1);
    }
  });
});
