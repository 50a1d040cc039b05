import { expect } from 'chai';
import { Redis } from 'ioredis';
import { DRAIN_QUEUE } from '@memfleet/jobs/thread-drain';
import { createOutbox, type Outbox } from '@memfleet/outbox/outbox';
import { startAppProcess } from '@memfleet/testing/app-process';
import { testRedisUrl, uniquePrefix } from '@memfleet/testing/fixtures';

const CLI = 'apps/cli/src/main.ts';

describe('memfleet CLI: dlq and users (real Redis)', function () {
  this.timeout(60_000);
  let redis: Redis;
  let prefix: string;
  let outbox: Outbox;

  async function cli(...args: string[]): Promise<{ code: number | null; out: string }> {
    const proc = startAppProcess(CLI, {
      name: 'memfleet',
      args,
      env: { REDIS_URL: await testRedisUrl(), REDIS_KEY_PREFIX: prefix },
    });
    const code = await proc.waitForExit(30_000);
    return { code, out: proc.lines().join('\n') };
  }

  /** Two threads with dead letters between written messages, as a failing backend leaves them. */
  async function deadLetters(): Promise<void> {
    for (const [thread, ids] of [
      ['t1', ['a1', 'a2', 'a3']],
      ['t2', ['b1', 'b2']],
    ] as const) {
      await outbox.append(
        'acme',
        thread,
        'u1',
        ids.map((id) => ({
          clientMessageId: id,
          body: JSON.stringify({ role: 'user', content: id }),
        })),
        1000,
      );
      expect(await outbox.acquireLock('acme', thread, 'tok', 5000)).to.equal(true);
      for (const id of ids) {
        const outcome =
          id === 'a2'
            ? { status: 'written' as const }
            : { status: 'dead' as const, reason: `503 for ${id}` };
        await outbox.commit('acme', thread, 'tok', [id], outcome, 2000);
      }
      await outbox.releaseLock('acme', thread, 'tok');
    }
  }

  beforeEach(async () => {
    redis = new Redis(await testRedisUrl());
    prefix = uniquePrefix();
    outbox = createOutbox(redis, { prefix });
    await deadLetters();
  });
  afterEach(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('lists dead letters in a table with their reasons', async () => {
    const { code, out } = await cli('dlq', 'list', '--tenant', 'acme');
    expect(code).to.equal(0);
    for (const id of ['a1', 'a3', 'b1', 'b2']) expect(out).to.include(id);
    expect(out).to.include('503 for a1');
    expect(out).to.not.match(/\ba2\b/);
    expect(out).to.include('4 dead letter(s)');
    const json = await cli('dlq', 'list', '--tenant', 'acme', '--json');
    expect((JSON.parse(json.out) as unknown[]).length).to.equal(4);
  });

  it('replays with --dry-run changing nothing, then for real in thread order with drains queued', async () => {
    const dry = await cli('dlq', 'replay', '--tenant', 'acme', '--all', '--dry-run');
    expect(dry.code).to.equal(0);
    expect(dry.out).to.include('dry run: nothing was changed');
    expect(dry.out).to.match(/total\s*│\s*4/);
    expect(await outbox.deadLetters('acme', 0, 10)).to.have.length(4);

    const run = await cli('dlq', 'replay', '--tenant', 'acme', '--thread', 't1');
    expect(run.code).to.equal(0);
    expect(await outbox.pendingIds('acme', 't1')).to.deep.equal(['a1', 'a3']);
    expect(await outbox.pendingIds('acme', 't2')).to.deep.equal([]);
    expect(await redis.keys(`${prefix}:${DRAIN_QUEUE}:*`)).to.not.deep.equal([]);
    const rest = await cli('dlq', 'replay', '--tenant', 'acme', 'b2', 'b1');
    expect(rest.code).to.equal(0);
    // Given in any order, a thread's dead letters go back in accept order.
    expect(await outbox.pendingIds('acme', 't2')).to.deep.equal(['b1', 'b2']);
    expect(await outbox.deadLetters('acme', 0, 10)).to.deep.equal([]);
  });

  it('purges, shows one, and refuses bad usage with exit 2 naming the problem', async () => {
    const show = await cli('dlq', 'show', 'a1', '--tenant', 'acme');
    expect(show.code).to.equal(0);
    expect(JSON.parse(show.out)).to.include({
      clientMessageId: 'a1',
      threadId: 't1',
      error: '503 for a1',
    });
    const purge = await cli('dlq', 'purge', '--tenant', 'acme', '--thread', 't2');
    expect(purge.code).to.equal(0);
    expect((await outbox.deadLetters('acme', 0, 10)).map((d) => d.clientMessageId)).to.deep.equal([
      'a1',
      'a3',
    ]);
    const both = await cli('dlq', 'replay', '--tenant', 'acme', '--all', 'a1');
    expect(both.code).to.equal(2);
    expect(both.out).to.include('choose exactly one of --all, --thread');
    const noTenant = await cli('dlq', 'list');
    expect(noTenant.code).to.equal(2);
    expect(noTenant.out).to.include("required option '--tenant <tenant>'");
    const help = await cli('dlq', 'purge', '--help');
    expect(help.code).to.equal(0);
    expect(help.out).to.include('--dry-run');
    const unknown = await cli('dlq', 'show', 'zzz', '--tenant', 'acme');
    expect(unknown.code).to.equal(1);
    expect(unknown.out).to.include('zzz: not a dead letter of acme');
  });

  it('queues a user erasure', async () => {
    const res = await cli('users', 'erase', 'u1', '--tenant', 'acme');
    expect(res.code).to.equal(0);
    expect(res.out).to.include('erasure of u1 (acme) queued');
    expect(await redis.keys(`${prefix}:user-erase:*`)).to.not.deep.equal([]);
  });

  it('gets and sets the live flags (memfleet flags, as pnpm flags)', async () => {
    const set = await cli('flags', 'set', '--tenant', 'acme', 'mode=off', 'canary=40');
    expect(set.code).to.equal(0);
    const got = await cli('flags', 'get');
    expect(got.code).to.equal(0);
    const view = JSON.parse(got.out.slice(got.out.indexOf('{'))) as {
      tenants: Record<string, { mode?: string; canary_percent?: number }>;
    };
    expect(view.tenants.acme).to.deep.include({ mode: 'off', canary_percent: 40 });
    const bad = await cli('flags', 'set', 'mode=sideways');
    expect(bad.code).to.equal(2);
    expect(bad.out).to.include('mode=sideways: mode must be off, write_only, read_write');
    const help = await cli('flags', '--help');
    expect(help.code).to.equal(0);
    expect(help.out).to.include('clear-downgrade');
  });
});
