import { Zep, ZepClient, ZepError } from '@getzep/zep-cloud';
import { expect } from 'chai';
import { request } from 'node:http';
import { startAppProcess } from './app-process.ts';
import { httpRequestJson } from './http-request.ts';
import { waitFor } from './wait-for.ts';
import { startZepEmulator, type ZepEmulator, type ZepEmulatorOptions } from './zep-emulator.ts';

const KEY = 'zep-emulator-key';
// No SDK retries and a short timeout: the SDK leaks its timeout timer after a failed fetch.
const RO = { maxRetries: 0, timeoutInSeconds: 2 } as const;

async function rejectionOf(promise: Promise<unknown>): Promise<ZepError> {
  try {
    await promise;
  } catch (err: unknown) {
    if (err instanceof ZepError) return err;
    throw err;
  }
  throw new Error('expected the call to fail with a ZepError');
}

/** POSTs `text` as is (httpRequestJson would encode it), resolving the status. */
function postText(url: string, text: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      agent: false,
      headers: { authorization: `Api-Key ${KEY}`, 'content-type': 'application/json' },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(text);
  });
}

function bodyMessage(err: ZepError): unknown {
  const body: unknown = err.body;
  return typeof body === 'object' && body !== null && 'message' in body ? body.message : undefined;
}

function userMessage(content: string, extra: Partial<Zep.Message> = {}): Zep.Message {
  return { role: 'user', content, ...extra };
}

describe('zep emulator (through @getzep/zep-cloud)', () => {
  let open: ZepEmulator[] = [];

  async function start(
    options: ZepEmulatorOptions = {},
  ): Promise<{ emu: ZepEmulator; zep: ZepClient }> {
    // Called directly with personal data, not through memfleet: left out of the PII scan.
    const emu = await startZepEmulator({ ...options, scan: false });
    open.push(emu);
    return { emu, zep: new ZepClient({ apiKey: KEY, baseUrl: emu.url }) };
  }

  /** An emulator with user u1 owning thread t1. */
  async function startWithThread(options: ZepEmulatorOptions = {}) {
    const started = await start(options);
    await started.zep.user.add({ userId: 'u1', firstName: 'Ann' }, RO);
    await started.zep.thread.create({ threadId: 't1', userId: 'u1' }, RO);
    return started;
  }

  afterEach(async () => {
    const closing = open;
    open = [];
    await Promise.all(closing.map((emu) => emu.close()));
  });

  describe('the v3 API', () => {
    it('creates users and threads, and answers a duplicate with a 400 "already exists"', async () => {
      const { emu, zep } = await start();
      expect(emu.url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/api\/v2$/);

      const user = await zep.user.add({ userId: 'u1', email: 'ann@example.com' }, RO);
      expect(user).to.include({ userId: 'u1', email: 'ann@example.com' });
      expect((await zep.user.get('u1', RO)).uuid).to.equal(user.uuid);
      const dupUser = await rejectionOf(zep.user.add({ userId: 'u1' }, RO));
      expect(dupUser).to.be.instanceOf(Zep.BadRequestError);
      expect(bodyMessage(dupUser)).to.equal('bad request: user already exists with user_id: u1');
      const emptyUser = await rejectionOf(zep.user.add({ userId: '' }, RO));
      expect(emptyUser.statusCode).to.equal(400);

      const thread = await zep.thread.create({ threadId: 't1', userId: 'u1' }, RO);
      expect(thread).to.include({ threadId: 't1', userId: 'u1', userUuid: user.uuid });
      const dupThread = await rejectionOf(zep.thread.create({ threadId: 't1', userId: 'u1' }, RO));
      expect(dupThread).to.be.instanceOf(Zep.BadRequestError);
      expect(bodyMessage(dupThread)).to.equal('bad request: session with id t1 already exists');
      const noUser = await rejectionOf(zep.thread.create({ threadId: 't2', userId: 'u9' }, RO));
      expect(noUser).to.be.instanceOf(Zep.BadRequestError);
      expect(bodyMessage(noUser)).to.equal('bad request: user does not exist with user_id: u9');
      const longId = await rejectionOf(
        zep.thread.create({ threadId: 'x'.repeat(501), userId: 'u1' }, RO),
      );
      expect(longId.statusCode).to.equal(400);
      await zep.thread.create({ threadId: 'y'.repeat(500), userId: 'u1' }, RO);

      expect(emu.userIds()).to.deep.equal(['u1']);
      expect(emu.threadIds()).to.deep.equal(['t1', 'y'.repeat(500)]);
      expect(emu.threadOwner('t1')).to.equal('u1');
      expect(emu.threadOwner('nope')).to.equal(undefined);
      const threads = await zep.user.getThreads('u1', RO);
      expect(threads.map((t) => t.threadId)).to.deep.equal(['t1', 'y'.repeat(500)]);
      expect(emu.requests[0]).to.include({ method: 'POST', path: '/users', status: 201 });
    });

    it('answers unknown users and threads with 404 "not found"', async () => {
      const { zep } = await start();
      const user = await rejectionOf(zep.user.get('a@b.com', RO));
      expect(user).to.be.instanceOf(Zep.NotFoundError);
      expect(user.statusCode).to.equal(404);
      expect(user.body).to.deep.equal({ message: 'not found' });

      expect(await rejectionOf(zep.thread.get('t1', {}, RO))).to.be.instanceOf(Zep.NotFoundError);
      expect(await rejectionOf(zep.thread.getUserContext('t1', {}, RO))).to.be.instanceOf(
        Zep.NotFoundError,
      );
      // addMessages maps only 500 to a typed class: a 404 is a plain ZepError.
      const write = await rejectionOf(
        zep.thread.addMessages('t1', { messages: [userMessage('a')] }, RO),
      );
      expect(write).not.to.be.instanceOf(Zep.NotFoundError);
      expect(write.statusCode).to.equal(404);
      expect((await rejectionOf(zep.user.delete('u1', RO))).statusCode).to.equal(404);
      expect((await rejectionOf(zep.thread.delete('t1', RO))).statusCode).to.equal(404);
    });

    it('stores messages in order with name, metadata and created_at, oldest first', async () => {
      const { emu, zep } = await startWithThread();
      const before = new Date().toISOString();
      const added = await zep.thread.addMessages(
        't1',
        {
          messages: [
            userMessage('first', {
              name: 'Ann',
              createdAt: '2025-06-01T13:11:12Z',
              metadata: { client_msg_id: 'm-1', tags: ['a', 1, true] },
            }),
            { role: 'assistant', content: 'second', metadata: { client_msg_id: 'm-2' } },
            { role: 'tool', content: 'third 🙂' },
          ],
        },
        RO,
      );
      const after = new Date().toISOString();

      const stored = emu.threadMessages('t1');
      expect(stored.map((m) => m.content)).to.deep.equal(['first', 'second', 'third 🙂']);
      expect(added.messageUuids).to.deep.equal(stored.map((m) => m.uuid));
      expect(added.taskId).to.be.a('string');
      expect(stored[0]).to.deep.include({
        role: 'user',
        name: 'Ann',
        created_at: '2025-06-01T13:11:12Z',
        metadata: { client_msg_id: 'm-1', tags: ['a', 1, true] },
      });
      // Without a client created_at, the receive time.
      const receivedAt = stored[1]?.created_at ?? '';
      expect(receivedAt >= before && receivedAt <= after).to.equal(true);
      expect(stored[2]).not.to.have.property('metadata');

      const listed = await zep.thread.get('t1', {}, RO);
      expect(listed).to.include({ rowCount: 3, totalCount: 3, userId: 'u1' });
      expect(listed.messages?.map((m) => m.metadata?.client_msg_id)).to.deep.equal([
        'm-1',
        'm-2',
        undefined,
      ]);
      expect(listed.messages?.[0]?.createdAt).to.equal('2025-06-01T13:11:12Z');

      const uuid = stored[1]?.uuid ?? '';
      const updated = await zep.thread.message.update(uuid, { metadata: { k: 'v' } }, RO);
      expect(updated).to.include({ uuid, content: 'second' });
      expect(emu.threadMessages('t1')[1]?.metadata).to.deep.equal({ k: 'v' });
      const missing = await rejectionOf(zep.thread.message.update('nope', { metadata: {} }, RO));
      expect(missing.statusCode).to.equal(404);
    });

    it('rejects an oversized batch, long content and bad metadata with 400, storing nothing', async () => {
      const { emu, zep } = await startWithThread();
      const add = (messages: Zep.Message[]) =>
        rejectionOf(zep.thread.addMessages('t1', { messages }, RO));

      const tooMany = await add(Array.from({ length: 31 }, (_, i) => userMessage(`m${i}`)));
      expect(tooMany.statusCode).to.equal(400);
      expect(bodyMessage(tooMany)).to.equal('max messages per memory of 30 exceeded');

      const tooLong = await add([userMessage('ok'), userMessage('x'.repeat(2501))]);
      expect(tooLong.statusCode).to.equal(400);
      expect(bodyMessage(tooLong)).to.equal('message content exceeds 2500 characters');

      const tenKeys = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, i]));
      const elevenKeys = { ...tenKeys, k10: 'one too many' };
      expect((await add([userMessage('a', { metadata: elevenKeys })])).statusCode).to.equal(400);
      const nested = await add([userMessage('a', { metadata: { deep: { no: 1 } } })]);
      expect(nested.statusCode).to.equal(400);
      expect((await add([userMessage('')])).statusCode).to.equal(400);
      expect(emu.threadMessages('t1')).to.deep.equal([]);

      // Limits are inclusive and content is counted in code points, not UTF-16 units.
      await zep.thread.addMessages(
        't1',
        {
          messages: [
            ...Array.from({ length: 29 }, (_, i) => userMessage(`m${i}`)),
            userMessage('🙂'.repeat(2500), { metadata: tenKeys }),
          ],
        },
        RO,
      );
      expect(emu.threadMessages('t1')).to.have.length(30);
    });

    it('checks what the SDK validates locally, on the wire: roles, JSON, routes and keys', async () => {
      const { emu } = await startWithThread({ maxContentChars: 5 });
      const post = (path: string, body: unknown, key = KEY) =>
        httpRequestJson(`${emu.url}${path}`, {
          method: 'POST',
          headers: { authorization: `Api-Key ${key}` },
          body,
        });

      const badRole = await post('/threads/t1/messages', {
        messages: [{ role: 'bogus', content: 'a' }],
      });
      expect(badRole.status).to.equal(400);
      expect(badRole.headers['content-type']).to.equal('application/json; charset=utf-8');
      expect((await post('/threads/t1/messages', { messages: [] })).status).to.equal(400);
      const long = await post('/threads/t1/messages', {
        messages: [{ role: 'user', content: '123456' }],
      });
      expect(long.json).to.deep.equal({ message: 'message content exceeds 5 characters' });

      const malformed = await httpRequestJson(`${emu.url}/threads/t1/messages`, {
        method: 'POST',
        headers: { authorization: `Api-Key ${KEY}`, 'content-type': 'application/json' },
        body: undefined,
      });
      expect(malformed.status).to.equal(400);
      const broken = await postText(`${emu.url}/users`, '{"user_id": ');
      expect(broken).to.equal(400);

      const unknown = await httpRequestJson(`${emu.url}/nowhere`, {
        headers: { authorization: `Api-Key ${KEY}` },
      });
      expect(unknown.status).to.equal(404);
      expect((await post('/users', { user_id: 'u2' }, 'wrong')).json).to.deep.equal({
        message: 'unauthorized',
      });
      const noKey = await httpRequestJson(`${emu.url}/users/u1`);
      expect(noKey.status).to.equal(401);
      expect(emu.threadMessages('t1')).to.deep.equal([]);
      expect(emu.userIds()).to.deep.equal(['u1']);
    });

    it('pages with lastn (which wins) or cursor and limit', async () => {
      const { zep } = await startWithThread();
      const messages = ['a', 'b', 'c', 'd', 'e'].map((c) => userMessage(c));
      await zep.thread.addMessages('t1', { messages }, RO);
      const contents = async (request: Zep.ThreadGetRequest) => {
        const page = await zep.thread.get('t1', request, RO);
        return { contents: page.messages?.map((m) => m.content), rows: page.rowCount };
      };
      expect(await contents({ lastn: 2 })).to.deep.equal({ contents: ['d', 'e'], rows: 2 });
      expect(await contents({ lastn: 9 })).to.deep.equal({
        contents: ['a', 'b', 'c', 'd', 'e'],
        rows: 5,
      });
      expect(await contents({ lastn: 1, limit: 2, cursor: 1 })).to.deep.equal({
        contents: ['e'],
        rows: 1,
      });
      expect(await contents({ limit: 2 })).to.deep.equal({ contents: ['a', 'b'], rows: 2 });
      expect(await contents({ limit: 2, cursor: 2 })).to.deep.equal({
        contents: ['c', 'd'],
        rows: 2,
      });
      expect(await contents({ limit: 2, cursor: 3 })).to.deep.equal({ contents: ['e'], rows: 1 });
      expect(await contents({ limit: 2, cursor: 4 })).to.deep.equal({ contents: [], rows: 0 });
      expect((await zep.thread.get('t1', { limit: 2, cursor: 3 }, RO)).totalCount).to.equal(5);
    });

    it("updates a message's metadata by uuid in any thread, before and after a thread is deleted", async () => {
      const { emu, zep } = await startWithThread();
      await zep.thread.create({ threadId: 't2', userId: 'u1' }, RO);
      const one = await zep.thread.addMessages(
        't1',
        { messages: [userMessage('first'), userMessage('café ☕', { name: 'Ann' })] },
        RO,
      );
      const two = await zep.thread.addMessages('t2', { messages: [userMessage('other')] }, RO);
      const [, second] = one.messageUuids ?? [];
      const updated = await zep.thread.message.update(
        second ?? '',
        { metadata: { topic: 'coffee', n: 2 } },
        RO,
      );
      expect(updated).to.include({ uuid: second, content: 'café ☕', name: 'Ann' });
      expect(updated.metadata).to.deep.equal({ topic: 'coffee', n: 2 });
      const t1 = emu.threadMessages('t1');
      expect(t1.map((m) => [m.content, m.metadata])).to.deep.equal([
        ['first', undefined],
        ['café ☕', { topic: 'coffee', n: 2 }],
      ]);
      // A copy: changing what the emulator handed out changes nothing stored.
      if (t1[1]?.metadata) t1[1].metadata.topic = 'tea';
      expect(emu.threadMessages('t1')[1]?.metadata).to.deep.equal({ topic: 'coffee', n: 2 });

      await zep.thread.delete('t1', RO);
      expect(
        (await rejectionOf(zep.thread.message.update(second ?? '', { metadata: {} }, RO)))
          .statusCode,
      ).to.equal(404);
      const [other] = two.messageUuids ?? [];
      await zep.thread.message.update(other ?? '', { metadata: { still: true } }, RO);
      expect(emu.threadMessages('t2').map((m) => m.metadata)).to.deep.equal([{ still: true }]);
      const late = await zep.thread.addMessages('t2', { messages: [userMessage('late')] }, RO);
      await zep.thread.message.update(late.messageUuids?.[0] ?? '', { metadata: { k: 'v' } }, RO);
      expect(emu.threadMessages('t2').map((m) => [m.content, m.metadata])).to.deep.equal([
        ['other', { still: true }],
        ['late', { k: 'v' }],
      ]);
    });

    it('stores a re-POSTed batch again: no deduplication', async () => {
      const { emu, zep } = await startWithThread();
      const request = { messages: [userMessage('hi', { metadata: { client_msg_id: 'm-1' } })] };
      const first = await zep.thread.addMessages('t1', request, RO);
      const second = await zep.thread.addMessages('t1', request, RO);
      expect(first.messageUuids?.[0]).not.to.equal(second.messageUuids?.[0]);
      expect(emu.threadMessages('t1').map((m) => m.metadata?.client_msg_id)).to.deep.equal([
        'm-1',
        'm-1',
      ]);
    });

    it('leaves messages out of the context until they are processed', async () => {
      const { emu, zep } = await startWithThread({ processingLagMs: 1000 });
      await zep.thread.create({ threadId: 't2', userId: 'u1' }, RO);
      const added = await zep.thread.addMessages(
        't1',
        {
          messages: [userMessage('likes tea'), { role: 'assistant', content: 'noted' }],
          ignoreRoles: ['assistant'],
          returnContext: true,
        },
        RO,
      );
      expect(added.context).to.equal(
        '<USER_SUMMARY>Ann (u1) has 0 processed facts from 2 threads.</USER_SUMMARY>\n<FACTS>\n</FACTS>',
      );
      expect(emu.threadMessages('t1').map((m) => m.processed)).to.deep.equal([false, false]);
      expect((await zep.task.get(added.taskId ?? '', RO)).status).to.equal('in_progress');
      expect((await zep.thread.getUserContext('t2', {}, RO)).context).not.to.include('likes tea');

      await waitFor('processing', () => emu.threadMessages('t1').every((m) => m.processed));
      expect((await zep.task.get(added.taskId ?? '', RO)).status).to.equal('completed');
      const stored = emu.threadMessages('t1')[0];
      // The user's context, from any of their threads; ignored roles stay out of the graph.
      const { context } = await zep.thread.getUserContext('t2', {}, RO);
      expect(context).to.equal(
        [
          '<USER_SUMMARY>Ann (u1) has 1 processed fact from 2 threads.</USER_SUMMARY>',
          '<FACTS>',
          `- likes tea (Date range: ${stored?.created_at ?? ''} - present)`,
          '</FACTS>',
        ].join('\n'),
      );
      expect((await zep.thread.get('t1', { lastn: 1 }, RO)).messages?.[0]?.processed).to.equal(
        true,
      );
    });

    it('adds graph data for a user and shows it in the context once processed', async () => {
      const { zep } = await startWithThread();
      const episode = await zep.graph.add({ userId: 'u1', type: 'text', data: 'owns a cat' }, RO);
      expect(episode).to.include({ content: 'owns a cat', processed: false });
      const bad = await rejectionOf(
        zep.graph.add({ userId: 'u1', graphId: 'g', type: 'text', data: 'x' }, RO),
      );
      expect(bad.statusCode).to.equal(400);
      let context = '';
      await waitFor('the episode in the context', async () => {
        context = (await zep.thread.getUserContext('t1', {}, RO)).context ?? '';
        return context.includes('owns a cat');
      });
      expect(context).to.include('- owns a cat (Date range: ');
    });

    it('deletes a user with its threads and messages', async () => {
      const { emu, zep } = await startWithThread();
      await zep.user.add({ userId: 'u2' }, RO);
      await zep.thread.create({ threadId: 't2', userId: 'u1' }, RO);
      await zep.thread.create({ threadId: 't3', userId: 'u2' }, RO);
      await zep.thread.addMessages('t1', { messages: [userMessage('a')] }, RO);
      await zep.thread.addMessages('t3', { messages: [userMessage('b')] }, RO);
      const [uuid] = emu.threadMessages('t1').map((m) => m.uuid);

      expect(await zep.user.delete('u1', RO)).to.deep.equal({ message: 'OK' });
      expect(emu.userIds()).to.deep.equal(['u2']);
      expect(emu.threadIds()).to.deep.equal(['t3']);
      expect(emu.threadMessages('t1')).to.deep.equal([]);
      expect(await rejectionOf(zep.thread.get('t1', {}, RO))).to.be.instanceOf(Zep.NotFoundError);
      const update = await rejectionOf(zep.thread.message.update(uuid ?? '', { metadata: {} }, RO));
      expect(update.statusCode).to.equal(404);
      // The ids are free again.
      await zep.user.add({ userId: 'u1' }, RO);
      await zep.thread.create({ threadId: 't1', userId: 'u1' }, RO);

      await zep.thread.delete('t3', RO);
      expect(emu.threadIds()).to.deep.equal(['t1']);
      expect(emu.userIds()).to.deep.equal(['u2', 'u1']);
    });

    it('answers a wrong API key with 401 and accepts keys set later', async () => {
      const { emu, zep } = await start({ apiKeys: ['k1', 'k2'] });
      const err = await rejectionOf(zep.user.add({ userId: 'u1' }, RO));
      expect(err).to.be.instanceOf(ZepError);
      expect(err.statusCode).to.equal(401);
      expect(err.body).to.deep.equal({ message: 'unauthorized' });

      const k2 = new ZepClient({ apiKey: 'k2', baseUrl: `${emu.url}/` });
      await k2.user.add({ userId: 'u1' }, RO);
      emu.setApiKeys([KEY]);
      expect((await rejectionOf(k2.user.get('u1', RO))).statusCode).to.equal(401);
      expect((await zep.user.get('u1', RO)).userId).to.equal('u1');
      expect(emu.requests.map((r) => r.status)).to.deep.equal([401, 201, 401, 200]);
    });
  });

  describe('faults', () => {
    const write = (
      zep: ZepClient,
      content = 'hello',
      ro: { maxRetries: number; timeoutInSeconds: number } = RO,
    ) => zep.thread.addMessages('t1', { messages: [userMessage(content)] }, ro);
    const onMessages = { method: 'POST', path: /^\/threads\/[^/]+\/messages$/ };

    it("status 'before' answers the error and stores nothing", async () => {
      const { emu, zep } = await startWithThread();
      emu.inject({ kind: 'status', status: 503, match: onMessages });
      const err = await rejectionOf(write(zep));
      expect(err.statusCode).to.equal(503);
      expect(err.body).to.deep.equal({ message: 'service unavailable' });
      expect(emu.threadMessages('t1')).to.deep.equal([]);
      expect(emu.requests.at(-1)).to.include({ fault: 'status', status: 503 });

      emu.inject({
        kind: 'status',
        status: 502,
        body: '<html>bad gateway</html>',
        headers: { 'Content-Type': 'text/html' },
      });
      const html = await rejectionOf(write(zep));
      expect(html.statusCode).to.equal(502);
      expect(html.body).to.equal('<html>bad gateway</html>');
      expect(html.rawResponse?.headers.get('content-type')).to.equal('text/html');
      await write(zep);
      expect(emu.threadMessages('t1')).to.have.length(1);
    });

    it("status 'after' stores the write, then answers the error", async () => {
      const { emu, zep } = await startWithThread();
      emu.inject({ kind: 'status', status: 500, commit: 'after', match: onMessages });
      const err = await rejectionOf(write(zep));
      expect(err).to.be.instanceOf(Zep.InternalServerError);
      expect(err.statusCode).to.equal(500);
      expect(emu.threadMessages('t1').map((m) => m.content)).to.deep.equal(['hello']);
    });

    it('rate_limit answers 429 text/plain with Retry-After and stores nothing', async () => {
      const { emu, zep } = await startWithThread();
      emu.inject({ kind: 'rate_limit', retryAfterS: 2 });
      const err = await rejectionOf(write(zep));
      expect(err.statusCode).to.equal(429);
      expect(err.body).to.equal('Rate limit exceeded for FREE plan');
      const headers = err.rawResponse?.headers;
      expect(headers?.get('retry-after')).to.equal('2');
      expect(headers?.get('content-type')).to.equal('text/plain; charset=utf-8');
      expect(headers?.get('x-ratelimit-remaining')).to.equal('0');
      expect(headers?.get('x-ratelimit-limit')).to.equal('5');
      expect(Number(headers?.get('x-ratelimit-reset'))).to.be.greaterThan(Date.now() / 1000);
      expect(emu.threadMessages('t1')).to.deep.equal([]);
    });

    it('a 429 once, then OK: the SDK retry goes through and stores once', async () => {
      const { emu, zep } = await startWithThread();
      emu.inject({ kind: 'rate_limit', retryAfterS: 60, match: onMessages });
      await write(zep, 'hello', { maxRetries: 1, timeoutInSeconds: 2 });
      expect(emu.requests.slice(-2).map((r) => r.status)).to.deep.equal([429, 200]);
      expect(emu.threadMessages('t1')).to.have.length(1);
    });

    it("delay 'before' longer than the SDK timeout: '\"timeout\"', the write stored", async () => {
      const { emu, zep } = await startWithThread();
      emu.inject({ kind: 'delay', ms: 10_000, match: onMessages });
      const err = await rejectionOf(write(zep, 'slow', { maxRetries: 0, timeoutInSeconds: 1 }));
      expect(err.message).to.equal('"timeout"');
      expect(err.statusCode).to.equal(undefined);
      expect(emu.threadMessages('t1').map((m) => m.content)).to.deep.equal(['slow']);
      expect(emu.requests.at(-1)).to.include({ fault: 'delay', path: '/threads/t1/messages' });
    });

    it("delay 'after' stores the write only once the delay is over, client or not", async () => {
      const { emu, zep } = await startWithThread();
      emu.inject({ kind: 'delay', ms: 2500, commit: 'after', match: onMessages });
      const err = await rejectionOf(write(zep, 'late', { maxRetries: 0, timeoutInSeconds: 1 }));
      expect(err.message).to.equal('"timeout"');
      expect(emu.threadMessages('t1')).to.deep.equal([]);
      await waitFor('the late write', () => emu.threadMessages('t1').length === 1);
    });

    it('delay shorter than the timeout: the answer comes late, but comes', async () => {
      const { emu, zep } = await startWithThread();
      emu.inject({ kind: 'delay', ms: 200, match: onMessages });
      await write(zep);
      const record = emu.requests.at(-1);
      expect(record).to.include({ fault: 'delay', status: 200 });
      expect((record?.answeredAt ?? 0) - (record?.arrivedAt ?? 0)).to.be.at.least(190);
    });

    it("drop 'before' destroys the socket: 'fetch failed', nothing stored", async () => {
      const { emu, zep } = await startWithThread();
      emu.inject({ kind: 'drop', match: onMessages });
      const err = await rejectionOf(write(zep));
      expect(err.message).to.equal('fetch failed');
      expect(err.statusCode).to.equal(undefined);
      expect(emu.threadMessages('t1')).to.deep.equal([]);
      const record = emu.requests.at(-1);
      expect(record?.fault).to.equal('drop');
      expect(record?.status).to.equal(undefined);
      expect(record?.answeredAt).to.equal(undefined);
      // The next request gets a fresh connection.
      await write(zep);
      expect(emu.threadMessages('t1')).to.have.length(1);
    });

    it("drop 'after' stores the write, then destroys the socket", async () => {
      const { emu, zep } = await startWithThread();
      emu.inject({ kind: 'drop', commit: 'after', match: onMessages });
      const err = await rejectionOf(write(zep));
      expect(err.message).to.equal('fetch failed');
      expect(emu.threadMessages('t1').map((m) => m.content)).to.deep.equal(['hello']);
    });

    it('hook runs after the write is stored and is awaited before the answer', async () => {
      const { emu, zep } = await startWithThread();
      let release = (): void => undefined;
      const released = new Promise<void>((resolve) => (release = resolve));
      const seen: { stored: number; status: number | undefined; path: string }[] = [];
      emu.inject({
        kind: 'hook',
        match: onMessages,
        run: async (record) => {
          seen.push({
            stored: emu.threadMessages('t1').length,
            status: record.status,
            path: record.path,
          });
          await released;
        },
      });
      let settled = false;
      const call = write(zep).finally(() => (settled = true));
      await waitFor('the hook', () => seen.length === 1);
      expect(seen).to.deep.equal([{ stored: 1, status: undefined, path: '/threads/t1/messages' }]);
      // The server still answers others meanwhile; the hooked call is held back.
      expect((await zep.thread.get('t1', {}, RO)).totalCount).to.equal(1);
      expect(settled).to.equal(false);
      release();
      expect((await call).messageUuids).to.have.length(1);
      expect(emu.requests.find((r) => r.fault === 'hook')?.status).to.equal(200);

      emu.inject({ kind: 'hook', run: () => Promise.reject(new Error('boom')) });
      const err = await rejectionOf(write(zep));
      expect(err.statusCode).to.equal(500);
      expect(bodyMessage(err)).to.equal('emulator hook failed: boom');
    });

    it('applies rules in order, to matching requests only, as many times as asked', async () => {
      const { emu, zep } = await startWithThread();
      emu.inject({ kind: 'status', status: 502, times: 2, match: onMessages });
      emu.inject({ kind: 'status', status: 504, match: { path: /\/messages$/ } });
      emu.inject({ kind: 'status', status: 418, times: 0 });

      expect((await zep.user.get('u1', RO)).userId).to.equal('u1');
      expect((await rejectionOf(zep.thread.get('t1', {}, RO))).statusCode).to.equal(504);
      const statuses: (number | undefined)[] = [];
      for (let i = 0; i < 2; i += 1) statuses.push((await rejectionOf(write(zep))).statusCode);
      expect(statuses).to.deep.equal([502, 502]);
      await write(zep);
      expect((await zep.thread.get('t1', {}, RO)).totalCount).to.equal(1);
      expect(emu.requests.slice(-6).map((r) => [r.method, r.status, r.fault])).to.deep.equal([
        ['GET', 200, undefined],
        ['GET', 504, 'status'],
        ['POST', 502, 'status'],
        ['POST', 502, 'status'],
        ['POST', 200, undefined],
        ['GET', 200, undefined],
      ]);
    });

    it('close() hangs up at once on answers held back by a delay or a hook', async () => {
      const { emu } = await startWithThread();
      emu.inject({ kind: 'delay', ms: 60_000, commit: 'after', match: onMessages });
      emu.inject({
        kind: 'hook',
        match: { method: 'GET' },
        run: () => new Promise(() => undefined),
      });
      const pending = [
        httpRequestJson(`${emu.url}/threads/t1/messages`, {
          headers: { authorization: `Api-Key ${KEY}` },
          body: { messages: [{ role: 'user', content: 'never' }] },
        }),
        httpRequestJson(`${emu.url}/users/u1`, { headers: { authorization: `Api-Key ${KEY}` } }),
      ].map((p) =>
        p.then(
          (res) => `answered ${res.status}`,
          (err: unknown) => (err instanceof Error ? err.message : String(err)),
        ),
      );
      await waitFor('both requests', () => emu.requests.length === 4);
      await emu.close();
      await emu.close();
      expect(await Promise.all(pending)).to.deep.equal(['socket hang up', 'socket hang up']);
    });

    it('applies faults before auth, and Infinity until cleared', async () => {
      const { emu } = await startWithThread();
      const wrongKey = new ZepClient({ apiKey: 'wrong', baseUrl: emu.url });
      emu.inject({ kind: 'status', status: 503, times: Infinity, match: { method: 'GET' } });
      for (let i = 0; i < 3; i += 1) {
        expect((await rejectionOf(wrongKey.user.get('u1', RO))).statusCode).to.equal(503);
      }
      emu.clearFaults();
      expect((await rejectionOf(wrongKey.user.get('u1', RO))).statusCode).to.equal(401);
    });
  });

  describe('rate limit', () => {
    it('spends a token bucket over all routes and reports it on every response', async () => {
      const { emu, zep } = await start({ rateLimitPerMinute: 3 });
      const remaining: (string | null)[] = [];
      const first = await zep.user.add({ userId: 'u1' }, RO).withRawResponse();
      remaining.push(first.rawResponse.headers.get('x-ratelimit-remaining'));
      expect(first.rawResponse.headers.get('x-ratelimit-limit')).to.equal('3');
      expect(first.rawResponse.headers.get('x-ratelimit-increment')).to.equal('1');
      const reset = Number(first.rawResponse.headers.get('x-ratelimit-reset'));
      expect(reset).to.be.within(Date.now() / 1000, Date.now() / 1000 + 61);
      const missing = await rejectionOf(zep.user.get('nobody', RO));
      remaining.push(missing.rawResponse?.headers.get('x-ratelimit-remaining') ?? null);
      const thread = await zep.thread
        .create({ threadId: 't1', userId: 'u1' }, RO)
        .withRawResponse();
      remaining.push(thread.rawResponse.headers.get('x-ratelimit-remaining'));
      expect(remaining).to.deep.equal(['2', '1', '0']);

      const limited = await rejectionOf(zep.thread.create({ threadId: 't2', userId: 'u1' }, RO));
      expect(limited.statusCode).to.equal(429);
      expect(limited.body).to.equal('Rate limit exceeded for FREE plan');
      const retryAfter = Number(limited.rawResponse?.headers.get('retry-after'));
      expect(retryAfter).to.be.within(1, 20);
      expect(limited.rawResponse?.headers.get('x-ratelimit-remaining')).to.equal('0');
      expect(emu.threadIds()).to.deep.equal(['t1']);
    });
  });

  describe('zep-emulator-main', () => {
    it('serves on the configured port and key, and exits 0 on SIGTERM', async () => {
      const app = startAppProcess('packages/testing/src/zep-emulator-main.ts', {
        name: 'zep-emulator',
        env: { ZEP_EMULATOR_PORT: '0', ZEP_EMULATOR_API_KEY: 'main-key' },
      });
      try {
        const line = await app.waitForLine(/"message":"zep emulator listening"/, 30_000);
        const { url } = JSON.parse(line) as { url: string };
        expect(url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/api\/v2$/);
        const zep = new ZepClient({ apiKey: 'main-key', baseUrl: url });
        expect((await zep.user.add({ userId: 'u1' }, RO)).userId).to.equal('u1');
        const wrong = new ZepClient({ apiKey: KEY, baseUrl: url });
        expect((await rejectionOf(wrong.user.get('u1', RO))).statusCode).to.equal(401);
        expect(await app.stop()).to.equal(0);
        expect(app.lines()).to.include('{"message":"zep emulator stopped","signal":"SIGTERM"}');
      } finally {
        await app.kill9();
      }
    });

    it('names a bad variable and exits 2', async () => {
      const app = startAppProcess('packages/testing/src/zep-emulator-main.ts', {
        name: 'zep-emulator',
        env: { ZEP_EMULATOR_PORT: '0', ZEP_EMULATOR_PROCESSING_LAG_MS: '-5' },
      });
      expect(await app.waitForExit(30_000)).to.equal(2);
      expect(app.lines().join('\n')).to.match(/ZEP_EMULATOR_PROCESSING_LAG_MS must be an integer/);
    });
  });
});
