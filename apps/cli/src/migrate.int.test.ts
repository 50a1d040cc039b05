import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { DRAIN_QUEUE } from '@memfleet/jobs/thread-drain';
import { createOutbox, type Outbox } from '@memfleet/outbox/outbox';
import { startAppProcess } from '@memfleet/testing/app-process';
import { testRedisUrl, uniquePrefix } from '@memfleet/testing/fixtures';
import { httpRequestJson } from '@memfleet/testing/http-request';
import { startMem0Emulator, type Mem0Emulator } from '@memfleet/testing/mem0-emulator';
import { startZepEmulator, type ZepEmulator } from '@memfleet/testing/zep-emulator';

const CLI = 'apps/cli/src/main.ts';
const MEM0_KEY = 'mem0-cli-key';
const ZEP_KEY = 'zep-cli-key';

describe('memfleet migrate mem0-to-zep (real Redis, mem0 and Zep emulators)', function () {
  this.timeout(60_000);
  let redis: Redis;
  let prefix: string;
  let outbox: Outbox;
  let dir: string;

  async function cli(
    args: string[],
    env: Record<string, string> = {},
  ): Promise<{ code: number | null; out: string }> {
    const proc = startAppProcess(CLI, {
      name: 'memfleet',
      args: ['migrate', 'mem0-to-zep', ...args],
      env: {
        REDIS_URL: await testRedisUrl(),
        REDIS_KEY_PREFIX: prefix,
        MEM0_TELEMETRY: 'false',
        MEM0_DIR: join(dir, 'mem0'),
        ...env,
      },
    });
    const code = await proc.waitForExit(30_000);
    return { code, out: proc.lines().join('\n') };
  }

  async function exportFile(name: string, value: unknown): Promise<string> {
    const file = join(dir, name);
    await writeFile(file, typeof value === 'string' ? value : JSON.stringify(value));
    return file;
  }

  interface QueuedMessage {
    id: string;
    role?: string;
    content?: string;
    created_at?: string;
    metadata?: Record<string, unknown>;
  }

  /** The redacted bodies of a thread's queued messages, in outbox order. */
  async function queuedBodies(tenant: string, threadId: string): Promise<QueuedMessage[]> {
    const ids = await outbox.pendingIds(tenant, threadId);
    return Promise.all(
      ids.map(async (id) => {
        const body = await redis.hget(outbox.keys.message(tenant, id), 'body');
        return { ...(JSON.parse(body ?? '{}') as Omit<QueuedMessage, 'id'>), id };
      }),
    );
  }

  const row = (out: string, name: string): number => {
    const m = new RegExp(`│ ${name} +│ (\\d+) +│`).exec(out);
    if (m === null) throw new Error(`no row "${name}" in:\n${out}`);
    return Number(m[1]);
  };

  beforeEach(async () => {
    redis = new Redis(await testRedisUrl());
    prefix = uniquePrefix();
    outbox = createOutbox(redis, { prefix });
    dir = await mkdtemp(join(tmpdir(), 'memfleet-migrate-cli-'));
  });
  afterEach(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await rm(dir, { recursive: true, force: true });
  });

  describe('--from-api', () => {
    let mem0: Mem0Emulator;
    beforeEach(async () => {
      // The source of the migration, seeded with personal data: left out of the PII scan.
      mem0 = await startMem0Emulator({ apiKeys: [MEM0_KEY], scan: false });
    });
    afterEach(async () => {
      await mem0.close();
    });

    /** Stores memories the way a mem0 app would (infer:false keeps each text as one memory). */
    async function seed(body: Record<string, unknown>): Promise<void> {
      const res = await httpRequestJson(`${mem0.url}/v3/memories/add/`, {
        headers: { authorization: `Token ${MEM0_KEY}` },
        body: { infer: false, ...body },
      });
      expect(res.status, res.text).to.equal(200);
    }

    it('reads every user page by page and migrates through the intake: threads, order, redaction, drains', async () => {
      // Over two getAll pages (200) and two intake batches (100) for one run.
      const many = Array.from({ length: 230 }, (_, i) => ({
        role: 'user',
        content: `fact ${i} about ann`,
      }));
      await seed({ messages: many, user_id: 'ann', run_id: 'r-long', timestamp: 1_700_000_100 });
      await seed({
        messages: [{ role: 'user', content: 'mail bob at bob@example.com' }],
        user_id: 'bob',
        metadata: { phone: '+1 415 555 0100', role: 'assistant' },
        timestamp: 1_700_000_300,
      });
      await seed({
        messages: [{ role: 'user', content: 'bob came first' }],
        user_id: 'bob',
        timestamp: 1_700_000_200,
      });

      const env = { MEM0_API_URL: mem0.url, MEM0_API_KEY: MEM0_KEY };
      const dry = await cli(['--tenant', 'acme', '--from-api', '--dry-run'], env);
      expect(dry.code, dry.out).to.equal(0);
      expect(row(dry.out, 'users')).to.equal(2);
      expect(row(dry.out, 'threads')).to.equal(2);
      expect(row(dry.out, 'messages')).to.equal(232);
      expect(await redis.keys(`${prefix}*`)).to.deep.equal([]);

      const run = await cli(['--tenant', 'acme', '--from-api'], env);
      expect(run.code, run.out).to.equal(0);
      expect(row(run.out, 'queued now')).to.equal(232);
      expect(run.out).to.include('read 232 memories from mem0');
      expect(run.out).to.match(/^migrate: 232\/232 messages$/m);

      const ann = await queuedBodies('acme', 'mem0-r-long');
      expect(ann.map((m) => m.content)).to.deep.equal(many.map((m) => m.content));
      const annIds = mem0.memories({ user_id: 'ann' }).map((m) => `mem0-${m.id}`);
      expect(ann.map((m) => m.id)).to.deep.equal(annIds);
      expect(await outbox.threadOwner('acme', 'mem0-r-long')).to.equal('ann');
      // No run: the user's own thread, in created_at order, roles from the metadata, redacted.
      const bob = await queuedBodies('acme', 'mem0-bob');
      expect(bob.map((m) => [m.role, m.content])).to.deep.equal([
        ['user', 'bob came first'],
        ['assistant', 'mail bob at [EMAIL]'],
      ]);
      expect(bob[1]?.metadata).to.deep.include({ phone: '[PHONE]' });
      expect(bob[1]?.created_at).to.equal(new Date(1_700_000_300_000).toISOString());
      expect(await redis.keys(`${prefix}:${DRAIN_QUEUE}:de:*`)).to.have.length(2);

      const again = await cli(['--tenant', 'acme', '--from-api'], env);
      expect(again.code, again.out).to.equal(0);
      expect(row(again.out, 'threads done by earlier runs')).to.equal(2);
      expect(row(again.out, 'queued now')).to.equal(0);
      // --restart sends everything again; the outbox knows every message already.
      const restart = await cli(['--tenant', 'acme', '--from-api', '--restart'], env);
      expect(restart.code, restart.out).to.equal(0);
      expect(row(restart.out, 'already in the fleet')).to.equal(232);
      expect(await outbox.pendingIds('acme', 'mem0-bob')).to.have.length(2);
    });

    it('fails with exit 1 naming mem0 when the key is refused', async () => {
      const res = await cli(['--tenant', 'acme', '--from-api'], {
        MEM0_API_URL: mem0.url,
        MEM0_API_KEY: 'wrong-key',
      });
      expect(res.code).to.equal(1);
      expect(res.out).to.include(`memfleet: reading mem0 at ${mem0.url} failed`);
      expect(await redis.keys(`${prefix}*`)).to.deep.equal([]);
    });
  });

  it('rejects records it cannot map and threads owned by another user, exits 1, and migrates the rest', async () => {
    await outbox.append(
      'acme',
      'mem0-taken',
      'someone-else',
      [{ clientMessageId: 'api-1', body: JSON.stringify({ role: 'user', content: 'x' }) }],
      1000,
    );
    const at = '2025-01-01T00:00:00Z';
    const file = await exportFile('export.json', [
      { id: 'a', memory: 'kept', user_id: 'u1', run_id: 'r1', created_at: at },
      { id: 'b', memory: 'no user', run_id: 'r1', created_at: at },
      { id: 'c', memory: 'bad role', user_id: 'u1', role: 'robot', created_at: at },
      { id: 'd', memory: 'second user', user_id: 'u2', run_id: 'r1', created_at: at },
      { id: 'e', memory: 'refused', user_id: 'u3', run_id: 'taken', created_at: at },
    ]);
    const res = await cli(['--tenant', 'acme', '--file', file]);
    expect(res.code, res.out).to.equal(1);
    expect(res.out).to.match(/│ 2 +│ b +│ user_id: required/);
    expect(res.out).to.match(/│ 3 +│ c +│ role: "robot" is not one of/);
    expect(res.out).to.match(/│ 4 +│ d +│ run_id: run r1 belongs to user u1, not u2/);
    expect(res.out).to.match(
      /│ mem0-taken +│ u3 +│ 1 +│ thread mem0-taken belongs to another user/,
    );
    expect(res.out).to.include('memfleet: 3 record(s) rejected; thread mem0-taken belongs to');
    expect(await outbox.pendingIds('acme', 'mem0-r1')).to.deep.equal(['mem0-a']);
    expect(await outbox.pendingIds('acme', 'mem0-taken')).to.deep.equal(['api-1']);
    // The refused thread is not marked done: a rerun tries it again and still says why.
    const again = await cli(['--tenant', 'acme', '--file', file]);
    expect(again.code).to.equal(1);
    expect(row(again.out, 'threads done by earlier runs')).to.equal(1);
    expect(row(again.out, 'refused threads')).to.equal(1);
  });

  it('refuses bad usage with exit 2, naming the option or variable, and writes nothing', async () => {
    const good = await exportFile('good.json', []);
    const cases: [string[], Record<string, string>, string][] = [
      [['--tenant', 'acme'], {}, 'choose exactly one source: --file <path> or --from-api'],
      [['--file', good], {}, "required option '--tenant <tenant>'"],
      [['--tenant', 'Acme!', '--file', good], {}, '--tenant: must be lowercase'],
      [['--tenant', 'acme', '--file', join(dir, 'none.json')], {}, '--file: cannot read'],
      [['--tenant', 'acme', '--file', await exportFile('bad.json', '{oops')], {}, 'is not JSON'],
      [
        ['--tenant', 'acme', '--file', await exportFile('obj.json', { memories: [] })],
        {},
        '--file: must be a JSON array of mem0 memories or an object with "results"',
      ],
      [['--tenant', 'acme', '--from-api'], {}, 'MEM0_API_KEY: required with --from-api'],
      [['--tenant', 'acme', '--file', good, '--validate'], {}, 'ZEP_API_KEY: required'],
      [['--tenant', 'acme', '--file', good, '--wait', 'soon'], {}, "'--wait <seconds>'"],
      [['--tenant', 'acme', '--file', good, '--dry-run', '--validate'], {}, 'cannot be used'],
      [['--tenant', 'acme', '--file', good, '--from-api'], {}, 'cannot be used'],
      [['--tenant', 'acme', '--file', good], { REDIS_URL: 'http://x' }, 'REDIS_URL:'],
      [['--tenant', 'acme', '--file', good], { MESSAGE_CONTENT_MAX_CHARS: '0' }, 'MESSAGE_'],
    ];
    const results = await Promise.all(cases.map(([args, env]) => cli(args, env)));
    cases.forEach(([args, , message], i) => {
      const res = results[i] ?? { code: null, out: '' };
      expect(res.code, `${args.join(' ')}\n${res.out}`).to.equal(2);
      expect(res.out, args.join(' ')).to.include(message);
      expect(res.out).to.not.match(/^\s+at /m);
    });
    expect(await redis.keys(`${prefix}*`)).to.deep.equal([]);
    const help = await cli(['--help']);
    expect(help.code).to.equal(0);
    for (const option of [
      '--file',
      '--from-api',
      '--dry-run',
      '--validate',
      '--wait',
      '--restart',
    ]) {
      expect(help.out).to.include(option);
    }
  });

  describe('--validate-only', () => {
    let zep: ZepEmulator;
    beforeEach(async () => {
      zep = await startZepEmulator({ apiKeys: [ZEP_KEY] });
    });
    afterEach(async () => {
      await zep.close();
    });

    async function zepCall(path: string, body: unknown): Promise<void> {
      const res = await httpRequestJson(`${zep.url}${path}`, {
        headers: { authorization: `Api-Key ${ZEP_KEY}` },
        body,
      });
      expect(res.status, res.text).to.be.within(200, 299);
    }
    async function zepThread(thread: string, user: string, ids: string[]): Promise<void> {
      await zepCall('/users', { user_id: user }).catch(() => undefined);
      await zepCall('/threads', { thread_id: thread, user_id: user });
      await zepCall(`/threads/${encodeURIComponent(thread)}/messages`, {
        messages: ids.map((id) => ({
          role: 'user',
          content: id,
          metadata: { client_message_id: id },
        })),
      });
    }

    it('compares each thread with Zep: missing, repeated and misplaced messages are differences', async () => {
      const at = '2025-01-01T00:00:00Z';
      const memory = (id: string, user: string, run: string) => ({
        id,
        memory: `memory ${id}`,
        user_id: user,
        run_id: run,
        created_at: at,
      });
      const file = await exportFile('export.json', [
        memory('a', 'u1', 'ok'),
        memory('b', 'u1', 'ok'),
        memory('c', 'u1', 'twice'),
        memory('d', 'u1', 'twice'),
        memory('e', 'u2', 'gone'),
        memory('f', 'u3', 'elsewhere'),
      ]);
      await zepThread('acme:mem0-ok', 'acme:u1', ['mem0-a', 'mem0-b', 'api-msg']);
      await zepThread('acme:mem0-twice', 'acme:u1', ['mem0-c', 'mem0-c', 'mem0-x']);
      await zepThread('acme:mem0-elsewhere', 'acme:u9', ['mem0-f']);
      const env = { ZEP_API_URL: zep.url, ZEP_API_KEY: ZEP_KEY };

      const res = await cli(['--tenant', 'acme', '--file', file, '--validate-only'], env);
      expect(res.code, res.out).to.equal(1);
      expect(res.out).to.include('validation: 3 difference(s) over 4 threads');
      expect(res.out).to.match(/│ u1 +│ mem0-twice +│ 2 +│ 3 +│ 1 +│ 2 +│ 0 +│ +│/);
      expect(res.out).to.match(
        /│ u2 +│ mem0-gone +│ 1 +│ 0 +│ 1 +│ 0 +│ 0 +│ no such thread in Zep/,
      );
      expect(res.out).to.match(
        /│ u3 +│ mem0-elsewhere +│ 1 +│ 1 +│ 0 +│ 0 +│ 0 +│ belongs to acme:u9 in Zep/,
      );
      expect(res.out).to.not.match(/│ mem0-ok /);
      expect(res.out).to.include('memfleet: 3 thread(s) differ in Zep');
      // Validation alone writes nothing.
      expect(await redis.keys(`${prefix}*`)).to.deep.equal([]);
    });
  });
});
