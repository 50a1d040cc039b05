import { expect } from 'chai';
import { Redis } from 'ioredis';
import { startAppProcess } from '@memfleet/testing/app-process';
import { freePort } from '@memfleet/testing/free-port';
import { testRedisUrl, uniquePrefix } from '@memfleet/testing/fixtures';
import { createFlags } from './flags.ts';
import type { FlagsView } from './flags-view.ts';

const CLI = 'packages/flags/src/flags-cli.ts';

describe('pnpm flags (the CLI, as a child process)', () => {
  let redis: Redis;
  let prefix: string;
  let env: Record<string, string>;

  /** Runs the CLI to its end: exit code, stdout+stderr lines. */
  async function cli(args: string[], extraEnv: Record<string, string> = {}) {
    const proc = startAppProcess(CLI, { name: 'flags-cli', args, env: { ...env, ...extraEnv } });
    const code = await proc.waitForExit(20_000);
    return { code, out: proc.lines().join('\n') };
  }
  async function show(args: string[] = []): Promise<FlagsView> {
    const { code, out } = await cli(args);
    expect(code, out).to.equal(0);
    return JSON.parse(out) as FlagsView;
  }

  beforeEach(async () => {
    redis = new Redis(await testRedisUrl());
    prefix = uniquePrefix();
    env = { REDIS_URL: await testRedisUrl(), REDIS_KEY_PREFIX: prefix, MEMORY_MODE: 'write_only' };
  });
  afterEach(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('shows, sets, unsets globally and per tenant, and clears a downgrade', async () => {
    expect(await show()).to.deep.equal({
      mode: 'write_only',
      canary_percent: 100,
      tenants: {},
      downgrade: null,
      source: 'env',
    });
    expect(await show(['set', 'mode=read_write', 'canary=10'])).to.deep.include({
      mode: 'read_write',
      canary_percent: 10,
      source: 'redis',
    });
    expect(await show(['set', '--tenant', 'acme', 'mode=off'])).to.deep.include({
      tenants: { acme: { mode: 'off' } },
    });
    expect((await show(['set', '--tenant=globex', 'canary=50'])).tenants).to.deep.equal({
      acme: { mode: 'off' },
      globex: { canary_percent: 50 },
    });

    // A running process of the fleet sees what the CLI wrote.
    const flags = createFlags(redis, {
      prefix,
      defaults: { mode: 'write_only', canaryPercent: 100 },
      refreshMs: 1000,
      downgradeMs: 60_000,
      downgradeAuthFailures: 1,
    });
    await flags.refresh();
    expect(flags.forThread('acme', 't1').writes).to.equal(false);
    expect(flags.forThread('initech', 't1').mode).to.equal('read_write');

    expect(await show(['unset', 'mode'])).to.deep.include({
      mode: 'write_only',
      canary_percent: 10,
    });
    expect((await show(['unset', '--tenant', 'acme'])).tenants).to.deep.equal({
      globex: { canary_percent: 50 },
    });
    expect(await show(['unset', 'canary', '--tenant', 'globex'])).to.deep.equal({
      mode: 'write_only',
      canary_percent: 10,
      tenants: {},
      downgrade: null,
      source: 'redis',
    });

    expect(await flags.recordAuthFailure()).to.equal(true);
    expect((await show()).downgrade?.reason).to.equal('auth');
    expect((await show(['clear-downgrade'])).downgrade).to.equal(null);
    expect(await redis.exists(`${prefix}:flags:downgrade`)).to.equal(0);
  });

  it('rejects bad arguments naming them, with exit code 2, and changes nothing', async () => {
    const cases: [string[], RegExp][] = [
      [['set', 'mode=sometimes'], /^mode=sometimes: mode must be off, write_only, read_write/],
      [['set', 'canary=101'], /^canary=101: canary must be an integer 0\.\.100/],
      [['set', 'canary=ten'], /^canary=ten: canary/],
      [['set', 'colour=red'], /^colour=red: unknown setting/],
      [['set', 'mode'], /^mode: expected setting=value/],
      [['set'], /^set: name at least one setting/],
      [['unset', 'mode=off'], /^mode=off: unset takes no value/],
      [['set', '--tenant', 'Not-A-Tenant', 'mode=off'], /^--tenant: needs a tenant name/],
      [['set', '--tenant'], /^--tenant: needs a tenant name/],
      [['set', '--force', 'mode=off'], /^--force: unknown option/],
      [['clear-downgrade', '--tenant', 'acme'], /^--tenant: not taken by clear-downgrade/],
      [['show', 'more'], /^more: unexpected argument/],
      [['launch'], /^launch: unknown command/],
    ];
    for (const [args, message] of cases) {
      const { code, out } = await cli(args);
      expect(code, args.join(' ')).to.equal(2);
      expect(out, args.join(' ')).to.match(message);
      expect(out).to.match(/usage:/);
    }
    const env = await cli([], { REDIS_KEY_PREFIX: 'memfleet' });
    expect(env.code).to.equal(2);
    expect(env.out).to.match(/^REDIS_KEY_PREFIX: must be a Redis Cluster hash tag/);
    expect(await redis.keys(`${prefix}*`)).to.deep.equal([]);
  });

  it('exits 1 with a message when Redis cannot be reached', async () => {
    const { code, out } = await cli(['set', 'mode=off'], {
      REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
    });
    expect(code).to.equal(1);
    expect(out).to.match(/^flags: cannot reach Redis \(redis:\/\/127\.0\.0\.1:\d+\/?\): /);
  });
});
