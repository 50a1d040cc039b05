import { expect } from 'chai';
import type { Redis } from 'ioredis';
import request from 'supertest';
import { createDrainQueue, THREAD_DRAIN } from '@memfleet/jobs/thread-drain';
import type { ApiRuntime } from './api-runtime.ts';
import { ACME, ADMIN, GLOBEX, startTestApi, type TestApi } from './test-api.fixture.ts';

const VIEWER = 'viewer-key-0123456789abcdef';

const message = (id: string, extra: Record<string, unknown> = {}) => ({
  client_message_id: id,
  role: 'user',
  content: `hello ${id}`,
  ...extra,
});

describe('api (real Redis and Postgres)', () => {
  let api: ApiRuntime;
  let redis: Redis;
  let prefix: string;
  let fixture: TestApi;

  before(async () => {
    fixture = await startTestApi({
      MESSAGE_CONTENT_MAX_CHARS: '1000',
      API_BODY_LIMIT_BYTES: '65536',
      MEMFLEET_DASHBOARD_KEYS: VIEWER,
    });
    ({ api, redis, prefix } = fixture);
    // Opens the API's Postgres connection up front: it is shared by every test of this file.
    expect((await request(api.url).get('/readyz')).status).to.equal(200);
  });

  after(() => fixture.stop());

  const post = (thread: string, body: unknown, key = ACME) =>
    request(api.url)
      .post(`/v1/threads/${thread}/messages`)
      .set('authorization', `Bearer ${key}`)
      .send(body as object);

  describe('bad input', () => {
    const valid = { user_id: 'u1', messages: [message('bad-0')] };
    const many = Array.from({ length: 101 }, (_, i) => message(`many-${i}`));
    const cases: [string, () => request.Test, number, RegExp][] = [
      [
        'invalid JSON',
        () =>
          request(api.url)
            .post('/v1/threads/t-bad/messages')
            .set('authorization', `Bearer ${ACME}`)
            .set('content-type', 'application/json')
            .send('{"user_id": "u1", "messages": ['),
        400,
        /^body: not valid JSON/,
      ],
      ['a non-object body', () => post('t-bad', [1, 2]), 400, /^body:/],
      ['missing user_id', () => post('t-bad', { messages: [message('x')] }), 400, /^user_id:/],
      ['missing messages', () => post('t-bad', { user_id: 'u1' }), 400, /^messages:/],
      [
        'user_id of the wrong type',
        () => post('t-bad', { ...valid, user_id: 7 }),
        400,
        /^user_id:/,
      ],
      [
        'no messages',
        () => post('t-bad', { user_id: 'u1', messages: [] }),
        400,
        /^messages: must hold at least 1/,
      ],
      [
        'more than 100 messages',
        () => post('t-bad', { user_id: 'u1', messages: many }),
        400,
        /^messages: must hold at most 100/,
      ],
      [
        'an unknown role',
        () => post('t-bad', { user_id: 'u1', messages: [message('x', { role: 'robot' })] }),
        400,
        /^messages\[0\]\.role:/,
      ],
      [
        'empty content',
        () => post('t-bad', { user_id: 'u1', messages: [message('x', { content: '  ' })] }),
        400,
        /^messages\[0\]\.content: must not be empty/,
      ],
      [
        'content of the wrong type',
        () => post('t-bad', { user_id: 'u1', messages: [message('x', { content: 42 })] }),
        400,
        /^messages\[0\]\.content:/,
      ],
      [
        'oversized content',
        () =>
          post('t-bad', { user_id: 'u1', messages: [message('x', { content: 'a'.repeat(1001) })] }),
        400,
        /^messages\[0\]\.content: must be at most 1000/,
      ],
      [
        'a bad created_at',
        () =>
          post('t-bad', { user_id: 'u1', messages: [message('x', { created_at: 'yesterday' })] }),
        400,
        /^messages\[0\]\.created_at: must be an ISO-8601/,
      ],
      [
        'a missing client_message_id',
        () => post('t-bad', { user_id: 'u1', messages: [{ role: 'user', content: 'x' }] }),
        400,
        /^messages\[0\]\.client_message_id:/,
      ],
      ['an unknown field', () => post('t-bad', { ...valid, extra: 1 }), 400, /^body: .*\(extra\)/],
      [
        'metadata that is not an object',
        () => post('t-bad', { user_id: 'u1', messages: [message('x', { metadata: 'no' })] }),
        400,
        /^messages\[0\]\.metadata:/,
      ],
      [
        'a body over the size limit',
        () =>
          post('t-bad', {
            user_id: 'u1',
            messages: [message('x', { content: 'a'.repeat(70_000) })],
          }),
        413,
        /^body: larger than 65536 bytes/,
      ],
      [
        'a non-JSON content type',
        () =>
          request(api.url)
            .post('/v1/threads/t-bad/messages')
            .set('authorization', `Bearer ${ACME}`)
            .set('content-type', 'text/plain')
            .send('hi'),
        415,
        /^content-type:/,
      ],
      [
        'no key',
        () => request(api.url).post('/v1/threads/t-bad/messages').send(valid),
        401,
        /Bearer/,
      ],
      [
        'a wrong key',
        () => post('t-bad', valid, 'wrong-key-0123456789abcdef'),
        401,
        /unknown API key/,
      ],
      [
        'a thread id with control characters',
        () => post('t%01bad', valid),
        400,
        /^thread_id: must not contain control/,
      ],
    ];

    for (const [name, send, status, pattern] of cases) {
      it(`answers ${status} for ${name}, naming the problem`, async () => {
        const res = await send();
        expect(res.status, JSON.stringify(res.body)).to.equal(status);
        expect(res.headers['x-request-id']).to.be.a('string');
        const body = res.body as { error: { code: string; message: string } };
        expect(body.error.code).to.be.a('string');
        expect(body.error.message).to.match(pattern);
      });
    }

    it('enqueued nothing for any of them and stays up', async () => {
      const keys = await redis.keys(`${prefix}*`);
      // Queues record their own settings (`meta`) when they open, and the rate limits count the
      // requests; no job or message was stored.
      expect(
        keys.filter((k) => !/:(thread-drain|user-erase):(meta|id)$|:rl:enqueue:acme$/.test(k)),
      ).to.deep.equal([]);
      const res = await request(api.url).get('/healthz');
      expect(res.status).to.equal(200);
    });
  });

  describe('POST messages with and without Express', () => {
    // `/v1/threads/{id}/messages` is answered straight from Node's HTTP server; the same path with
    // a trailing slash is left to Express. Both must answer every request alike.
    const direct = (thread: string) => `/v1/threads/${thread}/messages`;
    const viaExpress = (thread: string) => `/v1/threads/${thread}/messages/`;
    const sent = (path: string) => request(api.url).post(path);
    const keyed = (path: string) => sent(path).set('authorization', `Bearer ${ACME}`);
    const asJson = (path: string) => keyed(path).set('content-type', 'application/json');
    const cases: [string, string, (path: string, id: string) => request.Test][] = [
      [
        'a valid message',
        't-form',
        (p, id) => keyed(p).send({ user_id: 'u1', messages: [message(id)] }),
      ],
      ['no key', 't-form', (p) => sent(p).send({})],
      ['the admin key', 't-form', (p) => sent(p).set('authorization', `Bearer ${ADMIN}`).send({})],
      ['text/plain', 't-form', (p) => keyed(p).set('content-type', 'text/plain').send('hi')],
      ['no body', 't-form', (p) => keyed(p)],
      ['an empty JSON body', 't-form', (p) => asJson(p).send('')],
      ['invalid JSON', 't-form', (p) => asJson(p).send('{"user_id":')],
      ['a JSON string', 't-form', (p) => asJson(p).send('"u1"')],
      ['a body over the limit', 't-form', (p) => asJson(p).send(`"${'x'.repeat(70_000)}"`)],
      ['gzip that is not', 't-form', (p) => asJson(p).set('content-encoding', 'gzip').send('{}')],
      [
        'a latin1 body',
        't-form',
        (p) => keyed(p).set('content-type', 'application/json; charset=latin1').send('{}'),
      ],
      ['a schema error', 't-form', (p) => keyed(p).send({ user_id: '', messages: [{}] })],
      [
        'a thread id with control characters',
        't%01form',
        (p, id) => keyed(p).send({ user_id: 'u1', messages: [message(id)] }),
      ],
    ];
    const SAME_ANYWAY = new Set(['date', 'x-request-id', 'content-length', 'connection']);
    /** Answers of POST messages so far, by status, from the API's own metrics. */
    const routeCounts = async () => {
      const { text } = await request(api.url).get('/metrics');
      const counts = new Map<number, number>();
      for (const line of text.split('\n')) {
        const m =
          /^memfleet_http_request_duration_seconds_count\{.*route="\/v1\/threads\/:thread_id\/messages",method="POST",status="(\d+)".*\} (\d+)$/.exec(
            line,
          );
        if (m) counts.set(Number(m[1]), Number(m[2]));
      }
      return counts;
    };
    let countsBefore = new Map<number, number>();
    before(async () => {
      countsBefore = await routeCounts();
    });

    for (const [name, thread, send] of cases) {
      it(`answers ${name} alike`, async () => {
        const a = await send(direct(thread), 'form-direct');
        const b = await send(viaExpress(thread), 'form-express');
        expect(a.status, a.text).to.equal(b.status);
        expect(a.text.replaceAll('form-direct', 'ID')).to.equal(
          b.text.replaceAll('form-express', 'ID'),
        );
        const headersOf = (h: Record<string, string>) =>
          Object.entries(h).filter(([k]) => !SAME_ANYWAY.has(k));
        expect(headersOf(a.headers)).to.deep.equal(headersOf(b.headers));
        expect(a.headers['x-request-id']).to.be.a('string');
      });
    }

    it('counts both under the route template, by status', async () => {
      const after = await routeCounts();
      const delta = (status: number) => (after.get(status) ?? 0) - (countsBefore.get(status) ?? 0);
      // Each case went once each way: 3 cases are 415, 1 is 413 and 1 is 202.
      expect([delta(415), delta(413), delta(202)]).to.deep.equal([6, 2, 2]);
    });
  });

  describe('dedupe', () => {
    it('answers duplicate for the same client_message_id sent 5 times in a row', async () => {
      const statuses: string[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await post('t-seq', { user_id: 'u1', messages: [message('seq-1')] });
        expect(res.status).to.equal(202);
        statuses.push((res.body as { results: { status: string }[] }).results[0]?.status ?? '');
      }
      expect(statuses).to.deep.equal([
        'queued',
        'duplicate',
        'duplicate',
        'duplicate',
        'duplicate',
      ]);
    });

    it('queues exactly one of 20 concurrent sends of the same id', async () => {
      const responses = await Promise.all(
        Array.from({ length: 20 }, () =>
          post('t-conc', { user_id: 'u1', messages: [message('conc-1')] }),
        ),
      );
      const statuses = responses.map(
        (r) => (r.body as { results: { status: string }[] }).results[0]?.status,
      );
      expect(statuses.filter((s) => s === 'queued')).to.have.length(1);
      expect(statuses.filter((s) => s === 'duplicate')).to.have.length(19);
      expect(await redis.llen(`${prefix}:ob:acme:t-conc`)).to.equal(1);
    });

    it('treats the same id from two tenants as two messages', async () => {
      const a = await post('t-shared', { user_id: 'u1', messages: [message('same-id')] }, ACME);
      const b = await post('t-shared', { user_id: 'u1', messages: [message('same-id')] }, GLOBEX);
      expect((a.body as { results: { status: string }[] }).results[0]?.status).to.equal('queued');
      expect((b.body as { results: { status: string }[] }).results[0]?.status).to.equal('queued');
    });

    it('refuses a thread of another user with 409, naming user_id', async () => {
      await post('t-owned', { user_id: 'u1', messages: [message('own-1')] });
      const res = await post('t-owned', { user_id: 'u2', messages: [message('own-2')] });
      expect(res.status).to.equal(409);
      expect((res.body as { error: { message: string } }).error.message).to.match(/^user_id:/);
    });
  });

  describe('redaction', () => {
    it('redacts PII before anything reaches Redis', async () => {
      const res = await post('t-pii', {
        user_id: 'u1',
        messages: [
          message('pii-api-1', {
            content: 'write to jane.doe@example.com or +1 415-555-2671, card 4111 1111 1111 1111',
            name: 'jane.doe@example.com',
            metadata: { contact: { email: 'jane.doe@example.com' } },
          }),
        ],
      });
      expect(res.status).to.equal(202);
      const stored = await redis.hget(`${prefix}:msg:acme:pii-api-1`, 'body');
      const body = JSON.parse(stored ?? '{}') as {
        content: string;
        name: string;
        metadata: unknown;
      };
      expect(body.content).to.equal('write to [EMAIL] or [PHONE], card [CARD]');
      expect(body.name).to.equal('[EMAIL]');
      expect(body.metadata).to.deep.equal({ contact: { email: '[EMAIL]' } });
      const metrics = await request(api.url).get('/metrics');
      expect(metrics.text).to.match(/memfleet_redactions_total\{type="card",process="api"\} 1/);
    });
  });

  describe('status', () => {
    it('shows a queued message to its tenant and 404 to another', async () => {
      await post('t-status', { user_id: 'u1', messages: [message('status-1')] });
      const own = await request(api.url)
        .get('/v1/messages/status-1')
        .set('authorization', `Bearer ${ACME}`);
      expect(own.status).to.equal(200);
      expect(own.body).to.deep.include({
        client_message_id: 'status-1',
        thread_id: 't-status',
        status: 'queued',
        attempts: 0,
      });
      const other = await request(api.url)
        .get('/v1/messages/status-1')
        .set('authorization', `Bearer ${GLOBEX}`);
      expect(other.status).to.equal(404);
      const none = await request(api.url).get('/v1/messages/status-1');
      expect(none.status).to.equal(401);
    });
  });

  describe('operations', () => {
    it('serves readiness and Prometheus metrics', async () => {
      expect((await request(api.url).get('/readyz')).status).to.equal(200);
      const metrics = await request(api.url).get('/metrics');
      expect(metrics.status).to.equal(200);
      expect(metrics.text).to.match(
        /memfleet_messages_accepted_total\{outcome="queued",process="api"\} \d+/,
      );
    });

    it('serves Bull Board to the admin key only', async () => {
      const page = await request(api.url).get('/admin/queues').auth('admin', ADMIN);
      expect(page.status).to.equal(200);
      expect(page.text).to.match(/<html/i);
      const queues = await request(api.url)
        .get('/admin/queues/api/queues')
        .set('authorization', `Bearer ${ADMIN}`);
      expect(queues.status).to.equal(200);
      const names = (queues.body as { queues: { name: string }[] }).queues.map((q) => q.name);
      expect(names).to.include('thread-drain');
      const anonymous = await request(api.url).get('/admin/queues');
      expect(anonymous.status).to.equal(401);
      expect(anonymous.headers['www-authenticate']).to.match(/^Basic/);
      const tenant = await request(api.url)
        .get('/admin/queues/api/queues')
        .set('authorization', `Bearer ${ACME}`);
      expect(tenant.status).to.equal(403);
    });

    it('refuses ids holding an email or phone number, which would be stored as they are', async () => {
      const email = await post('chat-ann@example.com', {
        user_id: 'u1',
        messages: [message('id-1')],
      });
      expect(email.status).to.equal(400);
      expect((email.body as { error: { message: string } }).error.message).to.match(
        /^thread_id: must not hold an email address or phone number/,
      );
      const phone = await post('t-ids', {
        user_id: '+1 415 555 0100',
        messages: [message('id-2')],
      });
      expect(phone.status).to.equal(400);
      expect(JSON.stringify(phone.body)).to.include('user_id');
      const numeric = await post('t-ids', { user_id: '123456', messages: [message('id-3')] });
      expect(numeric.status).to.equal(202);
      expect(await redis.keys(`${prefix}*example.com*`)).to.deep.equal([]);
    });

    it('serves a read-only board to a dashboard key, and job data redacted to both', async () => {
      expect(
        (await post('board-t', { user_id: 'u1', messages: [message('board-1')] })).status,
      ).to.equal(202);
      // Job data a foreign producer put on the queue is shown redacted too.
      const foreign = createDrainQueue({ connection: redis, prefix, maxMessageAttempts: 1 });
      const job = await foreign.add(
        THREAD_DRAIN,
        { tenant: 'acme', threadId: 'note ann@example.com' },
        { delay: 3_600_000 },
      );
      const list = (key: string) =>
        request(api.url)
          .get(
            '/admin/queues/api/queues?activeQueue=thread-drain&status=latest&page=1&jobsPerPage=50',
          )
          .set('authorization', `Bearer ${key}`);
      const asViewer = await list(VIEWER);
      expect(asViewer.status).to.equal(200);
      const queues = (
        asViewer.body as {
          queues: { name: string; readOnlyMode: boolean; jobs: { data: unknown }[] }[];
        }
      ).queues;
      expect(queues.every((q) => q.readOnlyMode)).to.equal(true);
      const shown = JSON.stringify(queues.find((q) => q.name === 'thread-drain')?.jobs ?? []);
      expect(shown).to.include('"threadId":"note [EMAIL]"');
      expect(shown).to.not.match(/ann(@|%40)example\.com/);
      const adminShown = JSON.stringify((await list(ADMIN)).body);
      expect(adminShown).to.include('"threadId":"note [EMAIL]"');
      expect(adminShown).to.not.match(/ann(@|%40)example\.com/);
      await job.remove();
      await foreign.close();

      const pause = (key: string) =>
        request(api.url)
          .put('/admin/queues/api/queues/thread-drain/pause')
          .set('authorization', `Bearer ${key}`);
      expect((await pause(VIEWER)).status).to.equal(405);
      expect((await pause(ADMIN)).status).to.equal(200);
      const resume = await request(api.url)
        .put('/admin/queues/api/queues/thread-drain/resume')
        .set('authorization', `Bearer ${ADMIN}`);
      expect(resume.status).to.equal(200);
      const page = await request(api.url).get('/admin/queues').auth('viewer', VIEWER);
      expect(page.status).to.equal(200);
    });
  });
});
