import { expect } from 'chai';
import type { Redis } from 'ioredis';
import request from 'supertest';
import { createFlags } from '@memfleet/flags/flags';
import type { FlagsView } from '@memfleet/flags/flags-view';
import type { ApiRuntime } from './api-runtime.ts';
import { ACME, ADMIN, GLOBEX, startTestApi, type TestApi } from './test-api.fixture.ts';

const view = (res: request.Response): FlagsView => res.body as FlagsView;
const errorOf = (res: request.Response) =>
  (res.body as { error: { code: string; message: string } }).error;

const envDefaults = {
  mode: 'write_only',
  canary_percent: 50,
  tenants: {},
  downgrade: null,
  source: 'env',
};

describe('admin flags API: GET/PUT /v1/admin/flags (real Redis)', () => {
  let api: ApiRuntime;
  let redis: Redis;
  let prefix: string;
  let fixture: TestApi;

  before(async () => {
    fixture = await startTestApi({
      MEMORY_MODE: 'write_only',
      READ_CANARY_PERCENT: '50',
      FLAGS_REFRESH_MS: '100',
    });
    ({ api, redis, prefix } = fixture);
  });

  afterEach(() => fixture.clearRedis());

  after(() => fixture.stop());

  const get = (key = ADMIN) =>
    request(api.url).get('/v1/admin/flags').set('authorization', `Bearer ${key}`);
  const put = (body: unknown, key = ADMIN) =>
    request(api.url)
      .put('/v1/admin/flags')
      .set('authorization', `Bearer ${key}`)
      .send(body as object);

  it('requires the admin key: none is 401, a tenant key 403', async () => {
    const none = await request(api.url).get('/v1/admin/flags');
    expect(none.status).to.equal(401);
    expect(errorOf(none).code).to.equal('unauthorized');
    expect((await request(api.url).put('/v1/admin/flags').send({ mode: 'off' })).status).to.equal(
      401,
    );
    const tenant = await get(ACME);
    expect(tenant.status).to.equal(403);
    expect(errorOf(tenant).code).to.equal('forbidden');
    expect((await put({ mode: 'off' }, GLOBEX)).status).to.equal(403);
    expect((await get('not-a-key-at-all-0123')).status).to.equal(401);
    expect(await redis.keys(`${prefix}:flags*`)).to.deep.equal([]);
  });

  it('GET shows the env defaults; PUT changes them, answers the new state, null removes', async () => {
    const first = await get();
    expect(first.status).to.equal(200);
    expect(first.headers['x-request-id']).to.be.a('string');
    expect(first.body).to.deep.equal(envDefaults);

    const changed = await put({
      mode: 'read_write',
      canary_percent: 10,
      tenants: { acme: { mode: 'off' }, globex: { canary_percent: 0 } },
    });
    expect(changed.status).to.equal(200);
    const want = {
      mode: 'read_write',
      canary_percent: 10,
      tenants: { acme: { mode: 'off' }, globex: { canary_percent: 0 } },
      downgrade: null,
      source: 'redis',
    };
    expect(changed.body).to.deep.equal(want);
    expect((await get()).body).to.deep.equal(want);
    // Stored under the fleet's prefix, where every process of the fleet reads it.
    const other = createFlags(redis, {
      prefix,
      defaults: { mode: 'write_only', canaryPercent: 50 },
      refreshMs: 1000,
      downgradeMs: 60_000,
      downgradeAuthFailures: 3,
    });
    await other.refresh();
    expect(other.forThread('acme', 't1').writes).to.equal(false);

    // Only what the body names changes.
    expect(view(await put({ tenants: { globex: null } })).tenants).to.deep.equal({
      acme: { mode: 'off' },
    });
    expect(view(await put({})).mode).to.equal('read_write');
    const removed = await put({ mode: null, canary_percent: null, tenants: { acme: null } });
    expect(removed.body).to.deep.equal(envDefaults);
  });

  it('shows a read downgrade with its end as an ISO time, and PUT downgrade:null clears it', async () => {
    const worker = createFlags(redis, {
      prefix,
      defaults: { mode: 'read_write', canaryPercent: 100 },
      refreshMs: 1000,
      downgradeMs: 60_000,
      downgradeAuthFailures: 1,
    });
    expect(await worker.recordAuthFailure()).to.equal(true);
    const shown = view(await get());
    expect(shown.downgrade?.reason).to.equal('auth');
    const until = Date.parse(shown.downgrade?.until ?? '');
    expect(until).to.be.within(Date.now() + 50_000, Date.now() + 60_000);
    expect(new Date(until).toISOString()).to.equal(shown.downgrade?.until);
    expect(shown.source).to.equal('redis');
    const metrics = await request(api.url).get('/metrics');
    expect(metrics.text).to.match(/^memfleet_read_downgraded\{[^}]*\} 1$/m);
    // The global mode in force is write_only; a downgrade does not make it more.
    expect(metrics.text).to.match(/^memfleet_memory_mode\{mode="write_only"[^}]*\} 1$/m);

    const cleared = await put({ downgrade: null });
    expect(cleared.status).to.equal(200);
    expect(cleared.body).to.deep.equal(envDefaults);
    expect(await redis.exists(`${prefix}:flags:downgrade`)).to.equal(0);
  });

  it('/metrics shows the mode in force after a PUT', async () => {
    await put({ mode: 'off' });
    const text = (await request(api.url).get('/metrics')).text;
    expect(text).to.match(/^memfleet_memory_mode\{mode="off",process="api"\} 1$/m);
    expect(text).to.match(/^memfleet_memory_mode\{mode="write_only",process="api"\} 0$/m);
    expect(text).to.match(/^memfleet_memory_mode\{mode="read_write",process="api"\} 0$/m);
    expect(text).to.match(/^memfleet_read_downgraded\{process="api"\} 0$/m);
    expect(text).to.match(/^memfleet_read_downgrades_total\{reason="auth",process="api"\} 0$/m);
  });

  describe('bad input: 400 naming the field, nothing changed', () => {
    const cases: [string, unknown, RegExp][] = [
      [
        'an unknown mode',
        { mode: 'sometimes' },
        /^mode: must be one of off, write_only, read_write/,
      ],
      [
        'a canary over 100',
        { canary_percent: 101 },
        /^canary_percent: must be an integer 0\.\.100/,
      ],
      ['a negative canary', { canary_percent: -1 }, /^canary_percent: must be an integer/],
      ['a fractional canary', { canary_percent: 12.5 }, /^canary_percent: must be an integer/],
      ['a canary as a string', { canary_percent: '10' }, /^canary_percent: must be an integer/],
      ['an unknown field', { mode: 'off', colour: 'red' }, /^body: .*\(colour\)/],
      ['camelCase', { canaryPercent: 10 }, /^body: .*\(canaryPercent\)/],
      [
        'an unknown tenant',
        { tenants: { initech: { mode: 'off' } } },
        /^tenants\.initech: unknown tenant/,
      ],
      [
        'a bad tenant mode',
        { tenants: { acme: { mode: 'on' } } },
        /^tenants\.acme\.mode: must be one of/,
      ],
      [
        'a bad tenant canary',
        { tenants: { globex: { canary_percent: 1000 } } },
        /^tenants\.globex\.canary_percent: must be an integer/,
      ],
      [
        'an unknown tenant field',
        { tenants: { acme: { reads: false } } },
        /^tenants\.acme: .*\(reads\)/,
      ],
      ['tenants not an object', { tenants: ['acme'] }, /^tenants:/],
      [
        'a downgrade other than null',
        { downgrade: { reason: 'auth' } },
        /^downgrade: can only be null/,
      ],
      ['a body that is not an object', ['off'], /^body:/],
    ];
    for (const [what, body, message] of cases) {
      it(what, async () => {
        const res = await put(body);
        expect(res.status).to.equal(400);
        expect(errorOf(res).code).to.equal('invalid_request');
        expect(errorOf(res).message).to.match(message);
        expect(await redis.keys(`${prefix}:flags*`)).to.deep.equal([]);
      });
    }

    it('a body that is not JSON: 400; not labelled JSON: 415', async () => {
      const broken = await request(api.url)
        .put('/v1/admin/flags')
        .set('authorization', `Bearer ${ADMIN}`)
        .set('content-type', 'application/json')
        .send('{"mode": ');
      expect(broken.status).to.equal(400);
      expect(errorOf(broken).message).to.match(/^body: not valid JSON/);
      const text = await request(api.url)
        .put('/v1/admin/flags')
        .set('authorization', `Bearer ${ADMIN}`)
        .set('content-type', 'text/plain')
        .send('mode=off');
      expect(text.status).to.equal(415);
    });
  });
});
