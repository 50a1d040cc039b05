import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startMem0Emulator,
  type Mem0Emulator,
  type Mem0EmulatorOptions,
} from '@memfleet/testing/mem0-emulator';
import { describeBackendContract } from './backend-contract.ts';
import { backendRejection, testMessage } from './backend-test-support.ts';
import type { MemoryBackend, ThreadRef } from './memory-backend.ts';
import { createMem0Backend, type Mem0ApiStyle, type Mem0BackendOptions } from './mem0-backend.ts';

const KEY = 'mem0-test-key';
let mem0Dir = '';

before(async () => {
  // The client keeps an identity file under MEM0_DIR; tests keep it out of the home directory.
  mem0Dir = await mkdtemp(join(tmpdir(), 'memfleet-mem0-'));
  process.env.MEM0_DIR = mem0Dir;
});
after(async () => {
  await rm(mem0Dir, { recursive: true, force: true });
});

function backendFor(
  emu: Mem0Emulator,
  style: Mem0ApiStyle,
  options: Partial<Mem0BackendOptions> = {},
): MemoryBackend {
  return createMem0Backend({
    apiKey: KEY,
    apiUrl: emu.url,
    style,
    timeoutMs: 2000,
    pollIntervalMs: 20,
    ...options,
  });
}

for (const style of ['platform', 'oss'] as const) {
  describeBackendContract(
    `mem0 ${style} (${style === 'platform' ? 'mem0ai MemoryClient' : 'REST client'}, against the mem0 emulator)`,
    async () => {
      const emu = await startMem0Emulator({ apiKeys: [KEY], eventLagMs: 40 });
      return { backend: backendFor(emu, style), dispose: () => emu.close() };
    },
    { keeps: 'memories' },
  );
}

const msg = testMessage;
const rejection = backendRejection;

const ref: ThreadRef = { tenant: 'acme', userId: 'u1', threadId: 't1' };
const addPath = /^\/v3\/memories\/add\/$/;

describe('mem0 backend specifics (platform, emulator)', () => {
  let emu: Mem0Emulator | undefined;
  afterEach(async () => {
    await emu?.close();
    emu = undefined;
  });

  async function start(options: Omit<Mem0EmulatorOptions, 'apiKeys'> = {}): Promise<Mem0Emulator> {
    emu = await startMem0Emulator({ apiKeys: [KEY], ...options });
    return emu;
  }

  it('scopes by tenant-namespaced user and run, carries the client ids and shared metadata, splits on differing metadata, switches telemetry off', async () => {
    const e = await start();
    const backend = backendFor(e, 'platform');
    await backend.addMessages(ref, [
      msg('a', { metadata: { source: 'web' } }),
      msg('b', { metadata: { source: 'web' }, role: 'assistant' }),
      msg('c', { metadata: { source: 'app' } }),
    ]);
    expect(process.env.MEM0_TELEMETRY).to.equal('false');
    const adds = e.events().filter((ev) => ev.event_type === 'ADD');
    expect(adds.map((ev) => ev.payload.metadata)).to.deep.equal([
      { source: 'web', client_message_ids: ['a', 'b'] },
      { source: 'app', client_message_ids: ['c'] },
    ]);
    expect(adds[0]?.payload).to.include({ user_id: 'acme:u1', run_id: 'acme:t1', infer: true });
    expect(adds[0]?.payload.messages).to.deep.equal([
      { role: 'user', content: 'content of a' },
      { role: 'assistant', content: 'content of b' },
    ]);
    expect(adds.every((ev) => ev.status === 'SUCCEEDED')).to.equal(true);
    expect(e.memories({ user_id: 'acme:u1', run_id: 'acme:t1' })).to.have.length(3);
  });

  it('answers only once the event SUCCEEDED, however long it takes', async () => {
    const e = await start({ eventLagMs: 600 });
    const backend = backendFor(e, 'platform');
    await backend.addMessages(ref, [msg('a')]);
    const [event] = e.events();
    expect(event?.status).to.equal('SUCCEEDED');
    const polls = e.requests.filter((r) => r.path.startsWith('/v1/event/'));
    expect(polls.length).to.be.greaterThan(1);
  });

  it('turns a FAILED event into a permanent error with mem0 reason', async () => {
    const e = await start({
      outcome: (payload) => {
        if (JSON.stringify(payload.messages).includes('poison')) {
          throw new Error('LLM provider refused the content');
        }
        return 'succeeded';
      },
    });
    const backend = backendFor(e, 'platform');
    const err = await rejection(backend.addMessages(ref, [msg('p', { content: 'poison' })]));
    expect(err.kind).to.equal('permanent');
    expect(err.message).to.match(/FAILED for message p: LLM provider refused the content/);
    expect(await backend.findWritten(ref, ['p'])).to.have.property('size', 0);
  });

  it('treats SUCCEEDED with nothing stored as dead by default, or as written when configured', async () => {
    const e = await start({ outcome: () => 'empty' });
    const err = await rejection(backendFor(e, 'platform').addMessages(ref, [msg('a')]));
    expect(err.kind).to.equal('permanent');
    expect(err.message).to.match(/SUCCEEDED but stored no memory for message a/);
    await backendFor(e, 'platform', { onEmpty: 'written' }).addMessages(ref, [msg('b')]);
    expect(e.memories()).to.have.length(0);
  });

  it('an event outliving the wait is uncertain; reconciling waits for it and never resends', async () => {
    const e = await start({ eventLagMs: 3000 });
    const backend = backendFor(e, 'platform', { eventTimeoutMs: 200 });
    const err = await rejection(backend.addMessages(ref, [msg('a'), msg('b')]));
    expect(err.kind).to.equal('transient');
    expect(err.message).to.match(/still (PENDING|RUNNING)/);
    const pendingErr = await rejection(backend.findWritten(ref, ['a', 'b']));
    expect(pendingErr.kind).to.equal('transient');
    expect(pendingErr.message).to.match(/waiting for it before deciding/);
    let found = new Set<string>();
    const deadline = Date.now() + 10_000;
    while (found.size < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      found = await backend.findWritten(ref, ['a', 'b']).catch(() => new Set<string>());
    }
    expect([...found].sort()).to.deep.equal(['a', 'b']);
    expect(e.events().filter((ev) => ev.event_type === 'ADD')).to.have.length(1);
  });

  it('finds what another process wrote from the memories alone', async () => {
    const e = await start();
    await backendFor(e, 'platform').addMessages(ref, [msg('a'), msg('b')]);
    const other = backendFor(e, 'platform');
    expect([...(await other.findWritten(ref, ['a', 'b', 'c']))].sort()).to.deep.equal(['a', 'b']);
  });

  it('maps a 429 to rate_limited with the wait mem0 asks for, 401 to auth, 500 to transient, 400 to permanent', async () => {
    const e = await start();
    const backend = backendFor(e, 'platform');
    e.inject({ kind: 'rate_limit', retryAfterS: 3, match: { path: addPath } });
    const limited = await rejection(backend.addMessages(ref, [msg('a')]));
    expect(limited.kind).to.equal('rate_limited');
    expect(limited.details.retryAfterMs).to.equal(3000);
    e.inject({ kind: 'status', status: 500, match: { path: addPath } });
    expect((await rejection(backend.addMessages(ref, [msg('a')]))).kind).to.equal('transient');
    e.inject({ kind: 'status', status: 400, match: { path: addPath } });
    expect((await rejection(backend.addMessages(ref, [msg('a')]))).kind).to.equal('permanent');
    e.setApiKeys(['another-key']);
    expect((await rejection(backend.addMessages(ref, [msg('a')]))).kind).to.equal('auth');
    expect(e.memories()).to.have.length(0);
  });

  it('a 429 while polling an accepted add is uncertain, not a pause', async () => {
    const e = await start({ eventLagMs: 300 });
    const backend = backendFor(e, 'platform');
    e.inject({ kind: 'rate_limit', retryAfterS: 1, match: { path: /^\/v1\/event\// } });
    const err = await rejection(backend.addMessages(ref, [msg('a')]));
    expect(err.kind).to.equal('transient');
  });

  it('times out a hung call', async () => {
    const e = await start();
    e.inject({ kind: 'delay', ms: 1500, commit: 'after', match: { path: addPath } });
    const backend = backendFor(e, 'platform', { timeoutMs: 300 });
    const err = await rejection(backend.addMessages(ref, [msg('a')]));
    expect(err.kind).to.equal('transient');
    expect(err.message).to.match(/timed out/);
  });

  it('erases a user: memories and entity, nobody else', async () => {
    const e = await start();
    const backend = backendFor(e, 'platform');
    await backend.addMessages(ref, [msg('a')]);
    await backend.addMessages({ ...ref, userId: 'u2', threadId: 't2' }, [msg('b')]);
    await backend.eraseUser(ref);
    expect(e.memories({ user_id: 'acme:u1' })).to.have.length(0);
    expect(e.memories({ user_id: 'acme:u2' })).to.have.length(1);
    expect(
      e.requests.some((r) => r.method === 'DELETE' && r.path === '/v2/entities/user/acme:u1/'),
    ).to.equal(true);
  });
});

describe('mem0 backend specifics (self-hosted server, emulator)', () => {
  let emu: Mem0Emulator;
  beforeEach(async () => {
    emu = await startMem0Emulator({ apiKeys: [KEY] });
  });
  afterEach(() => emu.close());

  it('writes synchronously with X-API-Key and no event', async () => {
    const backend = backendFor(emu, 'oss');
    await backend.addMessages(ref, [msg('a'), msg('b')]);
    expect(emu.events()).to.have.length(0);
    const [add] = emu.requests.filter((r) => r.method === 'POST' && r.path === '/memories');
    expect(add?.status).to.equal(200);
    expect([...(await backend.findWritten(ref, ['a', 'b']))].sort()).to.deep.equal(['a', 'b']);
  });

  it('is detected when MEM0_API_STYLE is auto and the URL is not the platform', async () => {
    const backend = backendFor(emu, 'auto');
    await backend.addMessages(ref, [msg('a')]);
    expect(emu.events()).to.have.length(0);
    expect(emu.requests.filter((r) => r.method === 'POST').map((r) => r.path)).to.deep.equal([
      '/memories',
    ]);
  });

  it('maps the server answers: 502 provider_rate_limited, nothing stored, 401', async () => {
    const backend = backendFor(emu, 'oss');
    emu.inject({
      kind: 'status',
      status: 502,
      body: JSON.stringify({
        detail: 'rate limited',
        code: 'provider_rate_limited',
        request_id: 'x',
      }),
      match: { path: /^\/memories$/ },
    });
    expect((await rejection(backend.addMessages(ref, [msg('a')]))).kind).to.equal('rate_limited');
    const bad = await rejection(backend.addMessages(ref, [msg('a', { content: '   ' })]));
    // Content of only whitespace is dropped by mem0: nothing stored, which is dead by default.
    expect(bad.kind).to.equal('permanent');
    emu.setApiKeys(['other']);
    expect((await rejection(backend.addMessages(ref, [msg('a')]))).kind).to.equal('auth');
  });
});
