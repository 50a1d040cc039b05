import { expect } from 'chai';
import { startZepEmulator, type ZepEmulator } from '@memfleet/testing/zep-emulator';
import { describeBackendContract } from './backend-contract.ts';
import { backendRejection, testMessage } from './backend-test-support.ts';
import type { MemoryBackend, ThreadRef } from './memory-backend.ts';
import { createZepBackend, type ZepBackendOptions } from './zep-backend.ts';

const KEY = 'zep-test-key';

function backendFor(emu: ZepEmulator, options: Partial<ZepBackendOptions> = {}): MemoryBackend {
  return createZepBackend({ apiKey: KEY, apiUrl: emu.url, timeoutMs: 1000, ...options });
}

describeBackendContract('zep (through the SDK, against the Zep v3 emulator)', async () => {
  const emu = await startZepEmulator({ apiKeys: [KEY] });
  return { backend: backendFor(emu), dispose: () => emu.close() };
});

const msg = testMessage;
const rejection = backendRejection;

describe('zep backend specifics (emulator)', () => {
  let emu: ZepEmulator;
  let backend: MemoryBackend;
  const ref: ThreadRef = { tenant: 'acme', userId: 'u1', threadId: 't1' };
  const zepThread = 'acme:t1';

  beforeEach(async () => {
    emu = await startZepEmulator({ apiKeys: [KEY], maxContentChars: 100_000 });
    backend = backendFor(emu, { messageMaxChars: 50 });
    await backend.ensureUser(ref);
    await backend.ensureThread(ref);
  });
  afterEach(() => emu.close());

  const addCalls = () =>
    emu.requests.filter((r) => r.method === 'POST' && r.path === `/threads/${zepThread}/messages`);

  it('namespaces users and threads by tenant and sends client_message_id, name and created_at', async () => {
    expect(emu.userIds()).to.deep.equal(['acme:u1']);
    expect(emu.threadOwner(zepThread)).to.equal('acme:u1');
    await backend.addMessages(ref, [
      msg('a', {
        name: 'Ann',
        role: 'assistant',
        createdAt: '2026-01-02T03:04:05.000Z',
        metadata: { source: 'web', tags: ['x', 'y'], nested: { deep: 1 } },
      }),
    ]);
    const [stored] = emu.threadMessages(zepThread);
    expect(stored).to.include({ role: 'assistant', name: 'Ann', content: 'content of a' });
    expect(Date.parse(stored?.created_at ?? '')).to.equal(Date.parse('2026-01-02T03:04:05.000Z'));
    expect(stored?.metadata).to.deep.equal({
      source: 'web',
      tags: ['x', 'y'],
      nested: '{"deep":1}',
      client_message_id: 'a',
    });
  });

  it('tolerates users and threads that already exist (a second adapter, as after a restart)', async () => {
    const again = backendFor(emu);
    await again.ensureUser(ref);
    await again.ensureThread(ref);
    const creates = emu.requests.filter((r) => r.method === 'POST' && r.path === '/threads');
    expect(creates.map((r) => r.status)).to.deep.equal([201, 400]);
    // The same adapter does not ask again.
    await again.ensureThread(ref);
    expect(emu.requests.filter((r) => r.method === 'POST' && r.path === '/threads')).to.have.length(
      2,
    );
  });

  it('refuses a thread id that another user of the tenant owns', async () => {
    const other = backendFor(emu);
    const intruder = { ...ref, userId: 'u2' };
    await other.ensureUser(intruder);
    const err = await rejection(other.ensureThread(intruder));
    expect(err.kind).to.equal('permanent');
    expect(err.message).to.include('belongs to another user');
  });

  it('sends at most 30 messages per call, in order', async () => {
    const many = backendFor(emu);
    const ids = Array.from({ length: 65 }, (_, i) => `m${i}`);
    await many.addMessages(
      ref,
      ids.map((id) => msg(id)),
    );
    expect(addCalls().map((r) => r.status)).to.deep.equal([200, 200, 200]);
    expect(emu.threadMessages(zepThread).map((m) => m.metadata?.client_message_id)).to.deep.equal(
      ids,
    );
  });

  it('rejects content over the configured limit before any call, naming the limit', async () => {
    const err = await rejection(
      backend.addMessages(ref, [msg('long', { content: 'x'.repeat(51) })]),
    );
    expect(err.kind).to.equal('permanent');
    expect(err.message).to.equal(
      'message long: content is 51 characters, over the Zep limit of 50 (ZEP_MESSAGE_MAX_CHARS)',
    );
    expect(addCalls()).to.have.length(0);
    // Characters are code points: 30 emoji are 60 UTF-16 units but within the limit of 50.
    await backend.addMessages(ref, [msg('emoji', { content: '\u{1F600}'.repeat(30) })]);
    expect(addCalls()).to.have.length(1);
    const over = await rejection(
      backend.addMessages(ref, [msg('emoji-long', { content: '\u{1F600}'.repeat(51) })]),
    );
    expect(over.message).to.equal(
      'message emoji-long: content is 51 characters, over the Zep limit of 50 (ZEP_MESSAGE_MAX_CHARS)',
    );
  });

  it('rejects metadata with more keys than Zep allows', async () => {
    const metadata = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, i]));
    const err = await rejection(backend.addMessages(ref, [msg('meta', { metadata })]));
    expect(err.kind).to.equal('permanent');
    expect(err.message).to.include('Zep allows 9 besides client_message_id');
  });

  it('maps a rejection by Zep itself to permanent with its message', async () => {
    const strict = await startZepEmulator({ apiKeys: [KEY], maxContentChars: 10 });
    try {
      const b = backendFor(strict);
      await b.ensureUser(ref);
      await b.ensureThread(ref);
      const err = await rejection(b.addMessages(ref, [msg('too-long')]));
      expect(err.kind).to.equal('permanent');
      expect(err.details.status).to.equal(400);
      expect(err.message).to.match(/^zep thread.addMessages answered 400: .*exceeds 10/);
    } finally {
      await strict.close();
    }
  });

  it('does not let the SDK re-send a write after a 500; the batch is found on reconcile', async () => {
    emu.inject({ kind: 'status', status: 500, commit: 'after', match: { method: 'POST' } });
    const err = await rejection(backend.addMessages(ref, [msg('a'), msg('b')]));
    expect(err.kind).to.equal('transient');
    expect(addCalls()).to.have.length(1);
    expect(emu.threadMessages(zepThread)).to.have.length(2);
    expect([...(await backend.findWritten(ref, ['a', 'b', 'c']))].sort()).to.deep.equal(['a', 'b']);
  });

  it('classifies a slow answer and a dropped connection as transient', async () => {
    emu.inject({ kind: 'delay', ms: 1500, match: { method: 'POST' } });
    const slow = await rejection(backend.addMessages(ref, [msg('slow')]));
    expect(slow.kind).to.equal('transient');
    expect(slow.message).to.equal('zep thread.addMessages timed out');
    emu.inject({ kind: 'drop', match: { method: 'POST' } });
    const dropped = await rejection(backend.addMessages(ref, [msg('dropped')]));
    expect(dropped.kind).to.equal('transient');
    expect(dropped.message).to.equal('zep thread.addMessages failed: other side closed');
  });

  it('classifies 429 with its Retry-After, and 401 as auth', async () => {
    emu.inject({ kind: 'rate_limit', retryAfterS: 2 });
    const limited = await rejection(backend.addMessages(ref, [msg('a')]));
    expect(limited.kind).to.equal('rate_limited');
    expect(limited.details.retryAfterMs).to.equal(2000);
    emu.setApiKeys(['another-key']);
    const denied = await rejection(backend.addMessages(ref, [msg('a')]));
    expect(denied.kind).to.equal('auth');
    expect(denied.details.status).to.equal(401);
    expect(emu.threadMessages(zepThread)).to.have.length(0);
  });

  it('recreates a thread deleted behind its back', async () => {
    await backend.eraseUser(ref);
    expect(emu.userIds()).to.deep.equal([]);
    // erase forgot the cache; a thread deleted by someone else is found on the 404.
    await backend.ensureUser(ref);
    await backend.ensureThread(ref);
    await backend.addMessages(ref, [msg('a')]);
    const other = backendFor(emu);
    await other.eraseUser(ref);
    const err = await rejection(backend.addMessages(ref, [msg('b')]));
    expect(err.kind).to.equal('transient');
    await backend.ensureUser(ref);
    await backend.ensureThread(ref);
    await backend.addMessages(ref, [msg('b')]);
    expect(emu.threadMessages(zepThread).map((m) => m.metadata?.client_message_id)).to.deep.equal([
      'b',
    ]);
  });

  it('reads an empty context for a thread Zep does not know, and context only once processed', async () => {
    const unknown = { ...ref, threadId: 'nope' };
    expect(await backend.getContext(unknown)).to.deep.equal({ context: '', messages: [] });
    const lagging = await startZepEmulator({ apiKeys: [KEY], processingLagMs: 60_000 });
    try {
      const b = backendFor(lagging);
      await b.ensureUser(ref);
      await b.ensureThread(ref);
      await b.addMessages(ref, [msg('a', { content: 'I like green tea' })]);
      const context = await b.getContext(ref);
      expect(context.context).to.not.include('green tea');
      expect(context.messages.map((m) => m.clientMessageId)).to.deep.equal(['a']);
    } finally {
      await lagging.close();
    }
  });
});
