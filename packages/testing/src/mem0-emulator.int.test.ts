import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// Type-only: the module is imported in before(), once MEM0_TELEMETRY is set (it reads it on load).
import type * as Mem0 from 'mem0ai';
import { startAppProcess } from './app-process.ts';
import {
  startMem0Emulator,
  type Mem0Emulator,
  type Mem0EmulatorOptions,
  type StoredEvent,
} from './mem0-emulator.ts';
import { waitFor, waitForValue } from './wait-for.ts';

const KEY = 'mem0-emulator-key';

interface Raw {
  status: number;
  headers: Headers;
  json: unknown;
}

/** One request through global fetch, as the adapter makes the calls the client has no method for. */
async function raw(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown } = {},
): Promise<Raw> {
  const res = await fetch(url, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: {
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...init.headers,
    },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    json: text === '' ? undefined : (JSON.parse(text) as unknown),
  };
}

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err: unknown) {
    if (err instanceof Error) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

describe('mem0 emulator (through mem0ai MemoryClient)', () => {
  let mem0: typeof Mem0;
  let mem0Dir: string;
  let open: Mem0Emulator[] = [];

  before(async () => {
    // No PostHog calls and no ~/.mem0 writes (research §1.1); both are read when the client loads.
    process.env.MEM0_TELEMETRY = 'false';
    mem0Dir = await mkdtemp(join(tmpdir(), 'mem0-dir-'));
    process.env.MEM0_DIR = mem0Dir;
    mem0 = await import('mem0ai');
  });

  after(async () => {
    await rm(mem0Dir, { recursive: true, force: true });
  });

  afterEach(async () => {
    const closing = open;
    open = [];
    await Promise.all(closing.map((emu) => emu.close()));
  });

  async function start(options: Mem0EmulatorOptions = {}) {
    // Called directly with personal data, not through memfleet: left out of the PII scan.
    const emu = await startMem0Emulator({ ...options, scan: false });
    open.push(emu);
    const client = new mem0.MemoryClient({ apiKey: KEY, host: emu.url });
    // The constructor pings in the background; let that finish so it cannot outlive the test.
    await waitFor('the client ping', () =>
      emu.requests.some((r) => r.path === '/v1/ping/' && r.status !== undefined),
    );
    return { emu, client };
  }

  /** GET /v1/event/{id}/ with the Token header: the client has no method for it. */
  const getEvent = (emu: Mem0Emulator, eventId: string, key = KEY) =>
    raw(`${emu.url}/v1/event/${eventId}/`, { headers: { authorization: `Token ${key}` } });

  async function eventWhenDone(emu: Mem0Emulator, eventId: string): Promise<StoredEvent> {
    const res = await waitForValue(
      `event ${eventId} to finish`,
      () => getEvent(emu, eventId),
      (r) => {
        const status = (r.json as { status?: string } | undefined)?.status;
        return status === 'SUCCEEDED' || status === 'FAILED';
      },
    );
    expect(res.status).to.equal(200);
    return res.json as StoredEvent;
  }

  /** `add` is typed as returning Memory[], but the wire object arrives camelCased. */
  async function addAsync(
    client: Mem0.MemoryClient,
    ...args: Parameters<Mem0.MemoryClient['add']>
  ) {
    const answer: unknown = await client.add(...args);
    return answer as { eventId: string; status: string };
  }

  const user = (content: string) => ({ role: 'user' as const, content });

  describe('the platform API', () => {
    it('answers ping without user_email, and 401 with a wrong key as AuthenticationError', async () => {
      const { emu, client } = await start();
      expect(emu.url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
      await client.ping();
      const ping = await raw(`${emu.url}/v1/ping/`, { headers: { authorization: `Token ${KEY}` } });
      expect(ping.json).to.deep.equal({
        status: 'ok',
        org_id: 'org_emulator',
        project_id: 'proj_emulator',
      });

      emu.setApiKeys(['another-key']);
      const err = await rejectionOf(client.getAll({ filters: { user_id: 'u1' } }));
      // Observed: AuthenticationError, errorCode 'HTTP_401', message = the raw body text.
      expect(err).to.be.instanceOf(mem0.AuthenticationError);
      expect(err).to.be.instanceOf(mem0.MemoryError);
      expect(err).to.have.property('errorCode', 'HTTP_401');
      expect(JSON.parse(err.message))
        .to.have.property('detail')
        .that.match(/^Invalid API key/);
      const noHeader = await raw(`${emu.url}/v1/ping/`);
      expect(noHeader.status).to.equal(401);
      expect(emu.requests.at(-1)).to.include({ method: 'GET', path: '/v1/ping/', status: 401 });
    });

    it('queues an infer add as PENDING; the event SUCCEEDS with the memories, deduplicated', async () => {
      const { emu, client } = await start();
      const added = await addAsync(client, [user('I moved to Austin'), user('I like tea')], {
        userId: 'alice',
        metadata: { client_message_id: 'm-1' },
      });
      expect(added.status).to.equal('PENDING');
      expect(added.eventId).to.match(/^[0-9a-f-]{36}$/);

      const event = await eventWhenDone(emu, added.eventId);
      expect(event).to.include({ status: 'SUCCEEDED', event_type: 'ADD', error: null });
      expect(event.payload).to.deep.include({ user_id: 'alice' });
      const stored = emu.memories({ user_id: 'alice' });
      expect(stored.map((m) => m.memory)).to.deep.equal(['I moved to Austin', 'I like tea']);
      expect(event.results).to.deep.equal(
        stored.map((m) => ({ id: m.id, data: { memory: m.memory }, event: 'ADD' })),
      );
      expect(stored[0]?.metadata).to.deep.equal({ client_message_id: 'm-1' });

      // The same text again in the same scope: nothing new, SUCCEEDED with empty results.
      const again = await addAsync(client, [user('I like tea')], { userId: 'alice' });
      expect((await eventWhenDone(emu, again.eventId)).results).to.deep.equal([]);
      const other = await addAsync(client, [user('I like tea')], { userId: 'bob' });
      expect((await eventWhenDone(emu, other.eventId)).results).to.have.length(1);
      expect(emu.memories()).to.have.length(3);

      const missing = await getEvent(emu, '00000000-0000-4000-8000-000000000000');
      expect(missing.status).to.equal(404);
      expect(missing.json).to.deep.equal({
        error: "Event not found or you don't have permission to access it.",
      });
    });

    it('applies a lag set with setEventLagMs to later adds', async () => {
      const { emu, client } = await start();
      emu.setEventLagMs(400);
      const added = await addAsync(client, [user('later fact')], { userId: 'u1' });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await getEvent(emu, added.eventId)).json).to.include({ status: 'PENDING' });
      await waitForValue(
        'the event to succeed',
        async () => ((await getEvent(emu, added.eventId)).json as StoredEvent).status,
        (status) => status === 'SUCCEEDED',
      );
      expect(() => {
        emu.setEventLagMs(-1);
      }).to.throw(/eventLagMs/);
    });

    it('keeps an event PENDING, then RUNNING, for eventLagMs; memories appear only when it SUCCEEDS', async () => {
      const { emu, client } = await start({ eventLagMs: 300 });
      const added = await addAsync(client, [user('slow fact')], { userId: 'u1' });
      const first = await getEvent(emu, added.eventId);
      expect(first.json).to.include({ status: 'PENDING', started_at: null, completed_at: null });
      expect(emu.memories()).to.deep.equal([]);
      expect((await client.getAll({ filters: { user_id: 'u1' } })).results).to.deep.equal([]);

      const seen: string[] = [];
      await waitForValue(
        'the event to succeed',
        async () => {
          const { status } = (await getEvent(emu, added.eventId)).json as StoredEvent;
          if (seen.at(-1) !== status) seen.push(status);
          return status;
        },
        (status) => status === 'SUCCEEDED',
      );
      // RUNNING may fall between two polls; the order may not change.
      expect(['PENDING', 'RUNNING', 'SUCCEEDED'].filter((s) => seen.includes(s))).to.deep.equal(
        seen,
      );
      const [done] = emu.events();
      expect(done?.started_at).to.be.a('string');
      expect(Date.parse(done?.completed_at ?? '')).to.be.at.least(
        Date.parse(done?.started_at ?? ''),
      );
      expect(
        Date.parse(done?.completed_at ?? '') - Date.parse(done?.created_at ?? ''),
      ).to.be.at.least(250);
      expect(emu.memories().map((m) => m.memory)).to.deep.equal(['slow fact']);
    });

    it('ends adds FAILED (with an error) or SUCCEEDED with empty results, as outcome decides', async () => {
      const { emu, client } = await start({
        outcome: (payload) => {
          const wanted = (payload.metadata as { outcome?: string } | undefined)?.outcome;
          if (wanted === 'throw') throw new Error('extractor crashed');
          return wanted === 'failed' || wanted === 'empty' ? wanted : 'succeeded';
        },
      });
      const add = (outcome: string) =>
        addAsync(client, [user(`fact ${outcome}`)], { userId: 'u1', metadata: { outcome } });

      const failed = await eventWhenDone(emu, (await add('failed')).eventId);
      expect(failed).to.include({
        status: 'FAILED',
        error: 'Memory extraction failed (emulated).',
      });
      expect(failed.results).to.deep.equal([]);
      const crashed = await eventWhenDone(emu, (await add('throw')).eventId);
      expect(crashed).to.include({ status: 'FAILED', error: 'extractor crashed' });
      const empty = await eventWhenDone(emu, (await add('empty')).eventId);
      expect(empty).to.include({ status: 'SUCCEEDED', error: null });
      expect(empty.results).to.deep.equal([]);
      expect(emu.memories()).to.deep.equal([]);

      await eventWhenDone(emu, (await add('ok')).eventId);
      expect(emu.memories().map((m) => m.memory)).to.deep.equal(['fact ok']);
    });

    it('stores infer:false adds at once, one memory per non-system message, listed in order by getAll', async () => {
      const { emu, client } = await start();
      const answer: unknown = await client.add(
        [
          { role: 'system', content: 'be nice' } as unknown as Mem0.Message,
          user('first'),
          { role: 'assistant', content: 'second' },
        ],
        { userId: 'u1', runId: 'r1', infer: false, metadata: { client_message_id: 'm-1' } },
      );
      const sync = answer as { status: string; eventId: string; results: { id: string }[] };
      expect(sync).to.include({ status: 'SUCCEEDED', message: 'Memories stored successfully' });
      expect(sync.results.map((r) => r)).to.deep.equal(
        emu.memories().map((m) => ({ id: m.id, data: { memory: m.memory }, event: 'ADD' })),
      );
      expect((await getEvent(emu, sync.eventId)).json).to.include({ status: 'SUCCEEDED' });

      await client.add([user('third')], {
        userId: 'u1',
        infer: false,
        metadata: { client_message_id: 'm-2' },
      });
      // Exact same text in the same scope is skipped; a different scope (no run) is not.
      const dup: unknown = await client.add([user('first')], {
        userId: 'u1',
        runId: 'r1',
        infer: false,
      });
      expect((dup as { results: unknown[] }).results).to.deep.equal([]);
      await client.add([user('first')], { userId: 'u1', infer: false });
      await client.add([user('other user')], { userId: 'u2', infer: false });

      const all = await client.getAll({ filters: { user_id: 'u1' } });
      expect(all.count).to.equal(4);
      expect(all.results?.map((m) => m.memory)).to.deep.equal([
        'first',
        'second',
        'third',
        'first',
      ]);
      const [first] = all.results ?? [];
      expect(first?.metadata).to.deep.equal({ client_message_id: 'm-1' });
      // getAll names the run id session_id (and the client camelCases it).
      expect(first).to.deep.include({ userId: 'u1', sessionId: 'r1', appId: null });

      const page = await client.getAll({ filters: { user_id: 'u1' }, page: 2, pageSize: 3 });
      expect(page.results?.map((m) => m.memory)).to.deep.equal(['first']);
      expect(page).to.include({ next: null, previous: '/v3/memories/?page=1&page_size=3' });
      const byMeta = await client.getAll({
        filters: { AND: [{ user_id: 'u1' }, { metadata: { client_message_id: 'm-2' } }] },
      });
      expect(byMeta.results?.map((m) => m.memory)).to.deep.equal(['third']);
      const run = await client.getAll({ filters: { user_id: 'u1', run_id: 'r1' } });
      expect(run.count).to.equal(2);

      const found = await client.search('Third', { filters: { user_id: 'u1' } });
      expect(found.results.map((m) => [m.memory, m.score])).to.deep.equal([['third', 1]]);
      expect((found.results[0] as unknown as { runId: unknown }).runId).to.equal(null);
    });

    it('maps 400s to ValidationError and 404s to MemoryNotFoundError; checks some input locally', async () => {
      const { emu, client } = await start();
      const noEntity = await rejectionOf(client.add([user('a')], { infer: false }));
      // Observed: ValidationError, errorCode 'HTTP_400', message = the raw JSON body.
      expect(noEntity).to.be.instanceOf(mem0.ValidationError);
      expect(noEntity).to.have.property('errorCode', 'HTTP_400');
      expect(JSON.parse(noEntity.message)).to.deep.equal({
        error: '400 Bad Request',
        details: { message: 'At least one of user_id, agent_id, app_id or run_id is required.' },
      });
      const badRole = await raw(`${emu.url}/v3/memories/add/`, {
        headers: { authorization: `Token ${KEY}` },
        body: { messages: [], user_id: 'u1' },
      });
      expect(badRole.status).to.equal(400);

      // Checked by the client itself, as plain Errors, without a request.
      const before = emu.requests.length;
      expect((await rejectionOf(client.add([], { userId: 'u1' }))).message).to.equal(
        'Cannot process an empty messages payload.',
      );
      const topLevel = await rejectionOf(
        client.getAll({ userId: 'u1' } as Mem0.GetAllMemoryOptions),
      );
      expect(topLevel).not.to.be.instanceOf(mem0.MemoryError);
      expect(topLevel.message).to.match(/Top-level entity parameters/);
      expect(emu.requests.length).to.equal(before);

      expect(await rejectionOf(client.getAll())).to.be.instanceOf(mem0.ValidationError);
      // camelCase inside filters is no entity id: rejected, not silently empty.
      const camel = await rejectionOf(client.getAll({ filters: { userId: 'u1' } }));
      expect(camel).to.be.instanceOf(mem0.ValidationError);
      const missing = await rejectionOf(client.get('00000000-0000-4000-8000-000000000000'));
      expect(missing).to.be.instanceOf(mem0.MemoryNotFoundError);
      expect(JSON.parse(missing.message)).to.deep.equal({ error: 'Memory not found!' });
      expect(await rejectionOf(client.get('not-a-uuid'))).to.be.instanceOf(mem0.ValidationError);
      // The platform's paths end with a slash.
      const noSlash = await raw(`${emu.url}/v1/ping`, {
        headers: { authorization: `Token ${KEY}` },
      });
      expect(noSlash.status).to.equal(404);
    });

    it('gets, updates and deletes memories; deleteAll needs a filter; deleteUsers erases a user', async () => {
      const { emu, client } = await start();
      await client.add([user('a1'), user('a2')], { userId: 'alice', infer: false });
      await client.add([user('b1')], { userId: 'bob', infer: false });
      await client.add([user('c1')], { userId: 'carol', agentId: 'bot', infer: false });
      const [a1, a2] = emu.memories({ user_id: 'alice' });

      const got = await client.get(a1?.id ?? '');
      expect(got).to.include({ id: a1?.id, memory: 'a1', userId: 'alice' });
      await client.update(a1?.id ?? '', { text: 'a1 changed', metadata: { v: 2 } });
      expect(emu.memories({ user_id: 'alice' })[0]).to.include({ memory: 'a1 changed' });
      expect(emu.memories({ user_id: 'alice' })[0]?.metadata).to.deep.equal({ v: 2 });
      expect(await client.delete(a2?.id ?? '')).to.deep.equal({
        message: 'Memory deleted successfully!',
      });
      expect(await rejectionOf(client.delete(a2?.id ?? ''))).to.be.instanceOf(
        mem0.MemoryNotFoundError,
      );

      expect(await rejectionOf(client.deleteAll())).to.be.instanceOf(mem0.ValidationError);
      const deleted = await client.deleteAll({ userId: 'bob' });
      expect(deleted).to.have.property('message', 'Delete in progress. This may take some time.');
      expect(emu.memories().map((m) => m.memory)).to.deep.equal(['a1 changed', 'c1']);

      const users = await client.users();
      expect(users.results.map((u) => [u.type, u.name])).to.deep.equal([
        ['user', 'alice'],
        ['user', 'carol'],
        ['agent', 'bot'],
      ]);
      expect(await client.deleteUsers({ userId: 'alice' })).to.deep.equal({
        message: 'Entity deleted successfully.',
      });
      expect(emu.requests.at(-1)).to.include({
        method: 'DELETE',
        path: '/v2/entities/user/alice/',
        status: 200,
      });
      expect(emu.memories().map((m) => m.memory)).to.deep.equal(['c1']);
    });
  });

  describe('faults', () => {
    const onAdd = { method: 'POST', path: /^\/v3\/memories\/add\/$/ };

    it('rate_limit: RateLimitError without Retry-After; the header is on the wire', async () => {
      const { emu, client } = await start();
      emu.inject({ kind: 'rate_limit', retryAfterS: 7, match: onAdd, times: 2 });
      const err = await rejectionOf(client.add([user('a')], { userId: 'u1', infer: false }));
      // Observed: RateLimitError, errorCode 'HTTP_429', debugInfo {}: the client reads no headers.
      expect(err).to.be.instanceOf(mem0.RateLimitError);
      expect(err).to.deep.include({ errorCode: 'HTTP_429', debugInfo: {} });
      expect(JSON.parse(err.message)).to.deep.equal({
        detail: 'Request was throttled. Expected available in 7 seconds.',
      });
      const wire = await raw(`${emu.url}/v3/memories/add/`, {
        headers: { authorization: `Token ${KEY}` },
        body: { messages: [user('a')], user_id: 'u1' },
      });
      expect(wire.status).to.equal(429);
      expect(wire.headers.get('retry-after')).to.equal('7');
      expect(wire.headers.get('x-ratelimit-remaining')).to.equal('0');
      expect(emu.memories()).to.deep.equal([]);
      expect(emu.requests.filter((r) => r.fault === 'rate_limit')).to.have.length(2);
    });

    it("status 'after' stores, then fails (500 → base MemoryError, 503 → NetworkError)", async () => {
      const { emu, client } = await start();
      emu.inject({ kind: 'status', status: 500, commit: 'after', match: onAdd });
      const err = await rejectionOf(client.add([user('kept')], { userId: 'u1', infer: false }));
      expect(err.constructor).to.equal(mem0.MemoryError);
      expect(err).to.have.property('errorCode', 'HTTP_500');
      expect(emu.memories().map((m) => m.memory)).to.deep.equal(['kept']);

      emu.inject({ kind: 'status', status: 503, match: onAdd });
      const unavailable = await rejectionOf(
        client.add([user('lost')], { userId: 'u1', infer: false }),
      );
      expect(unavailable).to.be.instanceOf(mem0.NetworkError);
      expect(emu.memories().map((m) => m.memory)).to.deep.equal(['kept']);
    });

    it("drop: a raw TypeError 'fetch failed', not a MemoryError; 'after' has stored", async () => {
      const { emu, client } = await start();
      emu.inject({ kind: 'drop', match: onAdd });
      const err = await rejectionOf(client.add([user('lost')], { userId: 'u1', infer: false }));
      expect(err).to.be.instanceOf(TypeError);
      expect(err).not.to.be.instanceOf(mem0.MemoryError);
      expect(err.message).to.equal('fetch failed');
      expect(emu.memories()).to.deep.equal([]);

      emu.inject({ kind: 'drop', commit: 'after', match: onAdd });
      const after = await rejectionOf(client.add([user('kept')], { userId: 'u1', infer: false }));
      expect(after.message).to.equal('fetch failed');
      expect(emu.memories().map((m) => m.memory)).to.deep.equal(['kept']);
      expect(emu.requests.filter((r) => r.fault === 'drop').map((r) => r.status)).to.deep.equal([
        undefined,
        undefined,
      ]);
    });

    it('delay holds the answer back; hook runs before the answer', async () => {
      const { emu, client } = await start();
      emu.inject({ kind: 'delay', ms: 150, match: onAdd });
      await client.add([user('late')], { userId: 'u1', infer: false });
      const delayed = emu.requests.find((r) => r.fault === 'delay');
      expect((delayed?.answeredAt ?? 0) - (delayed?.arrivedAt ?? 0)).to.be.at.least(140);

      let storedInHook: string[] = [];
      emu.inject({
        kind: 'hook',
        match: onAdd,
        run: () => {
          storedInHook = emu.memories().map((m) => m.memory);
          return Promise.resolve();
        },
      });
      await client.add([user('hooked')], { userId: 'u1', infer: false });
      expect(storedInHook).to.deep.equal(['late', 'hooked']);
    });
  });

  describe('the OSS server routes', () => {
    it('adds synchronously, lists, gets, searches and deletes with X-API-Key', async () => {
      const emu = await startMem0Emulator({ scan: false });
      open.push(emu);
      const oss = (path: string, init: { method?: string; body?: unknown } = {}) =>
        raw(`${emu.url}${path}`, { ...init, headers: { 'x-api-key': KEY } });

      const noKey = await raw(`${emu.url}/memories?user_id=u1`);
      expect(noKey.status).to.equal(401);
      expect(noKey.headers.get('www-authenticate')).to.equal('Bearer');
      expect(noKey.json).to.deep.equal({
        detail: 'Authentication required. Provide a Bearer token or X-API-Key header.',
      });
      const token = await raw(`${emu.url}/memories?user_id=u1`, {
        headers: { authorization: `Token ${KEY}` },
      });
      expect(token.status).to.equal(401);

      const noId = await oss('/memories', { body: { messages: [user('a')] } });
      expect(noId.status).to.equal(400);
      expect(noId.json).to.deep.equal({
        detail: 'At least one identifier (user_id, agent_id, run_id) is required.',
      });

      const added = await oss('/memories', {
        body: {
          messages: [user('tea'), user('tea')],
          user_id: 'u1',
          infer: false,
          metadata: { k: 1 },
        },
      });
      // OSS infer:false has no dedup at all.
      const results = (added.json as { results: { id: string; memory: string; event: string }[] })
        .results;
      expect(results.map((r) => [r.memory, r.event])).to.deep.equal([
        ['tea', 'ADD'],
        ['tea', 'ADD'],
      ]);
      const inferred = await oss('/memories', {
        body: { messages: [user('coffee'), user('coffee')], user_id: 'u1', run_id: 'r1' },
      });
      expect((inferred.json as { results: unknown[] }).results).to.have.length(1);

      const listed = await oss('/memories?user_id=u1&run_id=r1');
      const [coffee] = (listed.json as { results: Record<string, unknown>[] }).results;
      expect(coffee).to.include({ memory: 'coffee', user_id: 'u1', run_id: 'r1' });
      expect(coffee?.hash).to.match(/^[0-9a-f]{32}$/);
      expect((await oss('/memories')).status).to.equal(400);

      const id = results[0]?.id ?? '';
      expect(((await oss(`/memories/${id}`)).json as { memory: string }).memory).to.equal('tea');
      const none = await oss('/memories/00000000-0000-4000-8000-000000000000');
      expect(none).to.include({ status: 200, json: null });
      expect(
        (await oss(`/memories/${id}`, { method: 'PUT', body: { text: 'green tea' } })).json,
      ).to.deep.equal({
        message: 'Memory updated successfully!',
      });

      const found = await oss('/search', { body: { query: 'green', user_id: 'u1' } });
      expect(
        (found.json as { results: { memory: string; score: number }[] }).results,
      ).to.deep.equal([
        { ...(found.json as { results: object[] }).results[0], memory: 'green tea', score: 1 },
      ]);
      expect((await oss('/search', { body: { query: 'tea' } })).status).to.equal(400);

      expect((await oss(`/memories/${id}`, { method: 'DELETE' })).status).to.equal(200);
      const gone = await oss(`/memories/${id}`, { method: 'DELETE' });
      expect(gone).to.deep.include({
        status: 404,
        json: { detail: `Memory with id ${id} not found` },
      });
      expect((await oss('/memories', { method: 'DELETE' })).status).to.equal(400);
      expect((await oss('/memories?user_id=u1', { method: 'DELETE' })).json).to.deep.equal({
        message: 'All relevant memories deleted',
      });
      expect(emu.memories()).to.deep.equal([]);
      expect((await oss('/memories/')).status).to.equal(404);
    });
  });

  describe('mem0-emulator-main', () => {
    it('serves on the configured port and key, and exits 0 on SIGTERM', async () => {
      const app = startAppProcess('packages/testing/src/mem0-emulator-main.ts', {
        name: 'mem0-emulator',
        env: { MEM0_EMULATOR_PORT: '0', MEM0_EMULATOR_API_KEY: 'main-key' },
      });
      try {
        const line = await app.waitForLine(/"message":"mem0 emulator listening"/, 30_000);
        const { url } = JSON.parse(line) as { url: string };
        expect(url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
        const client = new mem0.MemoryClient({ apiKey: 'main-key', host: url });
        await client.ping();
        const added: unknown = await client.add([user('hi')], { userId: 'u1', infer: false });
        expect(added).to.have.property('status', 'SUCCEEDED');
        const wrong = await raw(`${url}/v1/ping/`, { headers: { authorization: `Token ${KEY}` } });
        expect(wrong.status).to.equal(401);
        expect(await app.stop()).to.equal(0);
        expect(app.lines()).to.include('{"message":"mem0 emulator stopped","signal":"SIGTERM"}');
      } finally {
        await app.kill9();
      }
    });

    it('names a bad variable and exits 2', async () => {
      const app = startAppProcess('packages/testing/src/mem0-emulator-main.ts', {
        name: 'mem0-emulator',
        env: { MEM0_EMULATOR_PORT: '0', MEM0_EMULATOR_EVENT_LAG_MS: '-5' },
      });
      expect(await app.waitForExit(30_000)).to.equal(2);
      expect(app.lines().join('\n')).to.match(/MEM0_EMULATOR_EVENT_LAG_MS must be an integer/);
    });
  });
});
