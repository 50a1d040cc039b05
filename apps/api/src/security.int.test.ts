import { expect } from 'chai';
import type { Redis } from 'ioredis';
import request from 'supertest';
import { keyDigest } from '@memfleet/config/api-keys';
import type { ApiRuntime } from './api-runtime.ts';
import { ACME, ADMIN, GLOBEX, startTestApi, type TestApi } from './test-api.fixture.ts';

const ACME_READ = 'acme-read-key-0123456789ab';
const ACME_WRITE = 'acme-write-key-0123456789a';
const GLOBEX_HASHED = 'globex-hashed-key-0123456789';
const VIEWER = 'viewer-key-0123456789abcdef';

interface ErrorBody {
  error: { code: string; message: string };
}

describe('api security: keys, scopes, tenant isolation, headers, CSRF (real Redis and Postgres)', () => {
  let api: ApiRuntime;
  let redis: Redis;
  let prefix: string;
  let fixture: TestApi;

  before(async () => {
    fixture = await startTestApi({
      MEMFLEET_API_KEYS: [
        `acme:${ACME}`,
        `acme:${ACME_READ}:read`,
        `acme:${ACME_WRITE}:write`,
        `globex:${GLOBEX}`,
        `globex:sha256=${keyDigest(GLOBEX_HASHED)}`,
      ].join(','),
      MEMFLEET_ADMIN_KEY: `sha256=${keyDigest(ADMIN)}`,
      MEMFLEET_DASHBOARD_KEYS: VIEWER,
    });
    ({ api, redis, prefix } = fixture);
    expect((await request(api.url).get('/readyz')).status).to.equal(200);
    const accepted = await post('shared-thread', 'u1', 'a-secret-1', ACME);
    expect(accepted.status).to.equal(202);
  });

  after(() => fixture.stop());

  function post(thread: string, user: string, id: string, key: string) {
    return request(api.url)
      .post(`/v1/threads/${thread}/messages`)
      .set('authorization', `Bearer ${key}`)
      .send({ user_id: user, messages: [{ client_message_id: id, role: 'user', content: 'hi' }] });
  }
  const status = (id: string, key: string) =>
    request(api.url).get(`/v1/messages/${id}`).set('authorization', `Bearer ${key}`);
  const erase = (user: string, key: string) =>
    request(api.url).delete(`/v1/users/${user}`).set('authorization', `Bearer ${key}`);
  const flags = (key: string) =>
    request(api.url).get('/v1/admin/flags').set('authorization', `Bearer ${key}`);

  describe('no key, wrong key, wrong scope', () => {
    const cases: [string, () => request.Test, number, string, RegExp][] = [
      [
        'no key on enqueue',
        () => request(api.url).post('/v1/threads/t/messages').send({}),
        401,
        'unauthorized',
        /Bearer <api key> required/,
      ],
      [
        'an unknown key on enqueue',
        () => post('t', 'u1', 'x', 'wrong-key-0123456789abcdef'),
        401,
        'unauthorized',
        /unknown API key/,
      ],
      [
        'no key on status',
        () => request(api.url).get('/v1/messages/a-secret-1'),
        401,
        'unauthorized',
        /Bearer/,
      ],
      [
        'an unknown key on erase',
        () => erase('u1', 'wrong-key-0123456789abcdef'),
        401,
        'unauthorized',
        /unknown API key/,
      ],
      [
        'a read-scope key on enqueue',
        () => post('t', 'u1', 'x', ACME_READ),
        403,
        'forbidden',
        /lacks the write scope/,
      ],
      [
        'a read-scope key on erase',
        () => erase('u1', ACME_READ),
        403,
        'forbidden',
        /lacks the write scope/,
      ],
      [
        'a write-scope key on status',
        () => status('a-secret-1', ACME_WRITE),
        403,
        'forbidden',
        /lacks the read scope/,
      ],
      [
        'the admin key on enqueue',
        () => post('t', 'u1', 'x', ADMIN),
        403,
        'forbidden',
        /tenant API key is required/,
      ],
      [
        'no key on admin flags',
        () => request(api.url).get('/v1/admin/flags'),
        401,
        'unauthorized',
        /admin key required/,
      ],
      [
        'a tenant read+write key on admin flags',
        () => flags(ACME),
        403,
        'forbidden',
        /admin key required/,
      ],
      [
        'a write-scope key on admin flags',
        () => flags(ACME_WRITE),
        403,
        'forbidden',
        /admin key required/,
      ],
      [
        'a dashboard key on admin flags',
        () => flags(VIEWER),
        403,
        'forbidden',
        /admin key required/,
      ],
      [
        'a tenant key on the dashboard',
        () =>
          request(api.url).get('/admin/queues/api/queues').set('authorization', `Bearer ${GLOBEX}`),
        403,
        'forbidden',
        /admin or dashboard key required/,
      ],
      [
        'a tenant key as basic-auth password on the dashboard',
        () => request(api.url).get('/admin/queues').auth('x', GLOBEX),
        403,
        'forbidden',
        /admin or dashboard key required/,
      ],
    ];
    for (const [title, send, code, errorCode, message] of cases) {
      it(`answers ${code} to ${title}, naming the problem`, async () => {
        const res = await send();
        expect(res.status).to.equal(code);
        const body = res.body as ErrorBody;
        expect(body.error.code).to.equal(errorCode);
        expect(body.error.message).to.match(message);
      });
    }

    it('lets the scoped, rotated and hashed keys do what they may', async () => {
      expect((await post('t-scope', 'u1', 's-1', ACME_WRITE)).status).to.equal(202);
      expect((await status('s-1', ACME_READ)).status).to.equal(200);
      expect((await post('t-hashed', 'u9', 'h-1', GLOBEX_HASHED)).status).to.equal(202);
      expect((await status('h-1', GLOBEX)).status).to.equal(200);
      expect((await flags(ADMIN)).status).to.equal(200);
    });
  });

  describe('tenant isolation', () => {
    it('answers 404, as for an unknown id, when tenant B asks for the status of A’s message', async () => {
      expect((await status('a-secret-1', ACME)).status).to.equal(200);
      const asGlobex = await status('a-secret-1', GLOBEX);
      const unknown = await status('never-sent', GLOBEX);
      expect(asGlobex.status).to.equal(404);
      expect(unknown.status).to.equal(404);
      expect((asGlobex.body as ErrorBody).error.code).to.equal(
        (unknown.body as ErrorBody).error.code,
      );
      expect(JSON.stringify(asGlobex.body)).not.to.include('shared-thread');
    });

    it('keeps the same thread and message ids apart per tenant', async () => {
      const res = await post('shared-thread', 'someone-else', 'a-secret-1', GLOBEX);
      expect(res.status).to.equal(202);
      expect((res.body as { results: { status: string }[] }).results[0]?.status).to.equal('queued');
      expect((await status('a-secret-1', ACME)).status).to.equal(200);
    });

    it('erases only in the caller’s namespace: tenant B erasing user u1 leaves A’s u1 alone', async () => {
      const res = await erase('u1', GLOBEX);
      expect(res.status).to.equal(202);
      const jobKeys = await redis.keys(`${prefix}:user-erase:*`);
      const jobs = await Promise.all(jobKeys.map((k) => redis.hget(k, 'data').catch(() => null)));
      const data = jobs
        .filter((d): d is string => typeof d === 'string')
        .map((d) => JSON.parse(d) as { tenant?: string; userId?: string });
      expect(data.some((d) => d.tenant === 'globex' && d.userId === 'u1')).to.equal(true);
      expect(data.some((d) => d.tenant === 'acme')).to.equal(false);
      // A's message is still there and still A's.
      const mine = await status('a-secret-1', ACME);
      expect(mine.status).to.equal(200);
      expect((mine.body as { thread_id: string }).thread_id).to.equal('shared-thread');
    });

    it('shows no tenant the dashboard or its job data', async () => {
      for (const key of [ACME, GLOBEX, ACME_READ, GLOBEX_HASHED]) {
        const res = await request(api.url)
          .get(
            '/admin/queues/api/queues?activeQueue=thread-drain&status=latest&page=1&jobsPerPage=50',
          )
          .set('authorization', `Bearer ${key}`);
        expect(res.status, key).to.equal(403);
        expect(JSON.stringify(res.body)).not.to.include('shared-thread');
      }
    });
  });

  describe('headers and CSRF', () => {
    it('sends helmet’s security headers on every answer, errors included', async () => {
      for (const res of [
        await request(api.url).get('/healthz'),
        await status('a-secret-1', 'wrong-key-0123456789abcdef'),
        await request(api.url).get('/admin/queues').auth('admin', ADMIN),
      ]) {
        expect(res.headers['x-content-type-options']).to.equal('nosniff');
        expect(res.headers['content-security-policy']).to.include("script-src 'self'");
        expect(res.headers['x-frame-options']).to.equal('SAMEORIGIN');
        expect(res.headers['strict-transport-security']).to.match(/max-age=/);
        expect(res.headers['x-powered-by']).to.equal(undefined);
      }
    });

    const pause = () => request(api.url).put('/admin/queues/api/queues/thread-drain/pause');
    const resume = () =>
      request(api.url)
        .put('/admin/queues/api/queues/thread-drain/resume')
        .set('authorization', `Bearer ${ADMIN}`);

    it('refuses a cross-site change riding basic auth, with or without Sec-Fetch-Site', async () => {
      const crossOrigin = await pause().auth('admin', ADMIN).set('origin', 'https://evil.example');
      expect(crossOrigin.status).to.equal(403);
      expect((crossOrigin.body as ErrorBody).error.code).to.equal('csrf_rejected');
      const crossSite = await pause().auth('admin', ADMIN).set('sec-fetch-site', 'cross-site');
      expect(crossSite.status).to.equal(403);
      const nullOrigin = await pause().auth('admin', ADMIN).set('origin', 'null');
      expect(nullOrigin.status).to.equal(403);
      expect(await redis.hget(`${prefix}:thread-drain:meta`, 'paused')).to.equal(null);
    });

    it('lets a same-origin change with basic auth and a bearer change through', async () => {
      const host = new URL(api.url).host;
      const sameOrigin = await pause()
        .auth('admin', ADMIN)
        .set('origin', `http://${host}`)
        .set('sec-fetch-site', 'same-origin');
      expect(sameOrigin.status).to.equal(200);
      expect((await resume()).status).to.equal(200);
      const bearer = await pause()
        .set('authorization', `Bearer ${ADMIN}`)
        .set('origin', 'https://elsewhere.example');
      expect(bearer.status).to.equal(200);
      expect((await resume()).status).to.equal(200);
    });
  });
});

describe('api security: per-tenant rate limits (real Redis and Postgres)', () => {
  let fixture: TestApi;

  before(async () => {
    fixture = await startTestApi({
      RATE_LIMIT_ENQUEUE_PER_S: '2',
      RATE_LIMIT_ENQUEUE_BURST: '0',
      RATE_LIMIT_READ_PER_S: '1000',
    });
  });

  after(() => fixture.stop());

  const post = (key: string, id: string) =>
    request(fixture.api.url)
      .post(`/v1/threads/flood/messages`)
      .set('authorization', `Bearer ${key}`)
      .send({ user_id: 'u1', messages: [{ client_message_id: id, role: 'user', content: 'hi' }] });

  it('answers 429 with Retry-After to the tenant over its limit, and not to another tenant', async () => {
    const flood = await Promise.all(Array.from({ length: 12 }, (_, i) => post(ACME, `f-${i}`)));
    const limited = flood.filter((r) => r.status === 429);
    expect(limited.length).to.be.greaterThan(0);
    expect(flood.every((r) => r.status === 202 || r.status === 429)).to.equal(true);
    for (const res of limited) {
      expect(Number(res.headers['retry-after'])).to.be.at.least(1);
      expect((res.body as ErrorBody).error.code).to.equal('rate_limited');
      expect((res.body as ErrorBody).error.message).to.match(
        /^tenant acme: over the enqueue limit/,
      );
    }
    const other = await post(GLOBEX, 'g-1');
    expect(other.status).to.equal(202);
    const metrics = await request(fixture.api.url).get('/metrics');
    expect(metrics.text).to.match(
      /memfleet_rate_limited_requests_total\{limit="enqueue",tenant="acme",process="api"\} [1-9]/,
    );
    expect(metrics.text).not.to.match(/memfleet_rate_limited_requests_total\{[^}]*tenant="globex"/);
    const keys = await fixture.redis.keys(`${fixture.prefix}:rl:*`);
    expect(keys.every((k) => k.startsWith(`${fixture.prefix}:rl:enqueue:`))).to.equal(true);
  });
});
