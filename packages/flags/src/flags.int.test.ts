import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { createLogger } from '@memfleet/logger/create-logger';
import { createFlagMetrics } from '@memfleet/metrics/flag-metrics';
import { testRedisUrl, uniquePrefix } from '@memfleet/testing/fixtures';
import { waitFor } from '@memfleet/testing/wait-for';
import { startRedis } from '@memfleet/testing/redis-server';
import { createFlags, inCanary, type Flags, type FlagsOptions } from './flags.ts';

/** A logger whose JSON lines the test can read. */
function capturedLogger() {
  const stream = new PassThrough();
  const lines: { level: string; message: string }[] = [];
  stream.on('data', (chunk: Buffer) => {
    for (const l of chunk.toString('utf8').split('\n')) {
      if (l !== '') lines.push(JSON.parse(l) as { level: string; message: string });
    }
  });
  return { logger: createLogger({ service: 'test', stream }), lines };
}

/** The logger hands over a turn's lines at the end of the turn. */
const logged = () => new Promise((resolve) => setImmediate(resolve));

async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}) {
  const metric = registry.getSingleMetric(name);
  const values = (await metric?.get())?.values ?? [];
  const found = values.find((v) =>
    Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want),
  );
  return found?.value;
}

const inside = Array.from({ length: 1000 }, (_, i) => `t-${i}`).find((id) => inCanary(id, 10))!;
const outside = Array.from({ length: 1000 }, (_, i) => `t-${i}`).find((id) => !inCanary(id, 10))!;

describe('flags (real Redis)', () => {
  let redis: Redis;
  let prefix: string;
  let started: Flags[];

  /** A Flags as one member of the fleet has it; all share the prefix. */
  const member = (overrides: Partial<FlagsOptions> = {}): Flags => {
    const flags = createFlags(redis, {
      prefix,
      defaults: { mode: 'read_write', canaryPercent: 100 },
      refreshMs: 100,
      downgradeMs: 60_000,
      downgradeAuthFailures: 3,
      ...overrides,
    });
    started.push(flags);
    return flags;
  };

  beforeEach(async () => {
    redis = new Redis(await testRedisUrl());
    prefix = uniquePrefix();
    started = [];
  });
  afterEach(async () => {
    for (const f of started) f.stop();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('global overrides: written to Redis under the prefix, seen at once, removed with null', async () => {
    const a = member();
    await a.start();
    expect(a.snapshot().source).to.equal('env');
    const snap = await a.update({ mode: 'write_only', canaryPercent: 10 });
    expect(snap).to.deep.equal({
      mode: 'write_only',
      canaryPercent: 10,
      tenants: {},
      downgrade: undefined,
      source: 'redis',
    });
    expect(a.snapshot()).to.deep.equal(snap);
    expect(a.forThread('acme', inside)).to.include({
      mode: 'write_only',
      writes: true,
      reads: false,
    });
    expect(await redis.keys(`${prefix}*`)).to.deep.equal([`${prefix}:flags`]);

    // A process started later loads them.
    const b = member();
    await b.start();
    expect(b.snapshot()).to.deep.equal(snap);

    await a.update({ mode: 'read_write' });
    expect(a.forThread('acme', inside)).to.include({ reads: true, inCanary: true });
    expect(a.forThread('acme', outside)).to.include({
      reads: false,
      readBlockedBy: 'not_in_canary',
    });
    expect(await a.update({ mode: null, canaryPercent: null })).to.deep.equal({
      mode: 'read_write',
      canaryPercent: 100,
      tenants: {},
      downgrade: undefined,
      source: 'env',
    });
  });

  it('a tenant override applies to that tenant only, and null removes it', async () => {
    const a = member();
    await a.start();
    await a.update({ tenants: { acme: { mode: 'off' }, globex: { canaryPercent: 10 } } });
    expect(a.snapshot().tenants).to.deep.equal({
      acme: { mode: 'off' },
      globex: { canaryPercent: 10 },
    });
    expect(a.forThread('acme', inside)).to.deep.equal({
      mode: 'off',
      writes: false,
      reads: false,
      inCanary: true,
      readBlockedBy: 'mode_off',
    });
    expect(a.forThread('globex', inside)).to.include({ mode: 'read_write', reads: true });
    expect(a.forThread('globex', outside)).to.include({ reads: false, inCanary: false });
    expect(a.forThread('initech', outside)).to.include({ mode: 'read_write', reads: true });
    // The global mode does not override a tenant's own.
    await a.update({ mode: 'write_only' });
    expect(a.forThread('acme', inside).mode).to.equal('off');
    expect(a.forThread('initech', inside).mode).to.equal('write_only');

    await a.update({ tenants: { acme: null, globex: { canaryPercent: null } } });
    expect(a.snapshot().tenants).to.deep.equal({});
    expect(a.forThread('acme', inside).mode).to.equal('write_only');
  });

  it('two processes see each other’s update within the refresh interval', async () => {
    const a = member();
    const b = member();
    await Promise.all([a.start(), b.start()]);
    for (const [writer, reader, mode] of [
      [a, b, 'off'],
      [b, a, 'write_only'],
    ] as const) {
      const t0 = Date.now();
      await writer.update({ mode });
      await waitFor(
        `the other process to see ${mode}`,
        () => reader.snapshot().mode === mode,
        2000,
      );
      // refreshMs is 100: one interval plus the load itself, with room for a busy machine.
      expect(Date.now() - t0).to.be.below(1000);
    }
  });

  it('downgrades reads after N auth failures in a row fleet-wide, not before', async () => {
    const registryA = new Registry();
    const registryB = new Registry();
    const a = member({ metrics: createFlagMetrics(registryA) });
    const b = member({ metrics: createFlagMetrics(registryB) });
    await Promise.all([a.start(), b.start()]);
    expect(await metricValue(registryA, 'memfleet_memory_mode', { mode: 'read_write' })).to.equal(
      1,
    );

    expect(await a.recordAuthFailure()).to.equal(false);
    expect(await b.recordAuthFailure()).to.equal(false);
    await a.refresh();
    expect(a.snapshot().downgrade).to.equal(undefined);
    expect(a.forThread('acme', inside)).to.include({ mode: 'read_write', reads: true });

    expect(await a.recordAuthFailure()).to.equal(true);
    const d = a.snapshot().downgrade;
    expect(d?.reason).to.equal('auth');
    expect(d?.untilMs).to.be.within(Date.now() + 55_000, Date.now() + 60_000);
    expect(a.snapshot().mode, 'the global mode itself is unchanged').to.equal('read_write');
    expect(a.forThread('acme', inside)).to.deep.equal({
      mode: 'write_only',
      writes: true,
      reads: false,
      inCanary: true,
      readBlockedBy: 'mode_off',
    });
    // A tenant in off stays off; write_only stays write_only.
    await a.update({ tenants: { acme: { mode: 'off' } } });
    expect(a.forThread('acme', inside).mode).to.equal('off');

    await waitFor('b to see the downgrade', () => b.snapshot().downgrade?.reason === 'auth');
    expect(b.forThread('globex', inside)).to.include({ mode: 'write_only', reads: false });
    // A failure during the downgrade does not start another.
    expect(await b.recordAuthFailure()).to.equal(false);

    expect(
      await metricValue(registryA, 'memfleet_read_downgrades_total', { reason: 'auth' }),
    ).to.equal(1);
    expect(
      await metricValue(registryB, 'memfleet_read_downgrades_total', { reason: 'auth' }),
    ).to.equal(0);
    for (const registry of [registryA, registryB]) {
      expect(await metricValue(registry, 'memfleet_read_downgraded')).to.equal(1);
      expect(await metricValue(registry, 'memfleet_memory_mode', { mode: 'write_only' })).to.equal(
        1,
      );
      expect(await metricValue(registry, 'memfleet_memory_mode', { mode: 'read_write' })).to.equal(
        0,
      );
    }

    // Clearing it (and the count) restores reads everywhere.
    const cleared = await b.update({ downgrade: null });
    expect(cleared.downgrade).to.equal(undefined);
    await waitFor('a to see it cleared', () => a.snapshot().downgrade === undefined);
    expect(await metricValue(registryA, 'memfleet_read_downgraded')).to.equal(0);
    expect(await a.recordAuthFailure()).to.equal(false);
  });

  it('a success between failures resets the fleet-wide count', async () => {
    const a = member();
    const b = member();
    await a.recordAuthFailure();
    await a.recordAuthFailure();
    await b.recordAuthSuccess();
    expect(await a.recordAuthFailure()).to.equal(false);
    expect(await b.recordAuthFailure()).to.equal(false);
    expect(await a.refresh().then(() => a.snapshot().downgrade)).to.equal(undefined);
    expect(await b.recordAuthFailure()).to.equal(true);
  });

  it('a downgrade ends by itself after downgradeMs, in every process', async () => {
    const registry = new Registry();
    const a = member({ downgradeMs: 400, downgradeAuthFailures: 1 });
    const b = member({ metrics: createFlagMetrics(registry) });
    await Promise.all([a.start(), b.start()]);
    expect(await a.recordAuthFailure()).to.equal(true);
    await waitFor('b to see the downgrade', () => b.snapshot().downgrade !== undefined);
    expect(b.forThread('acme', inside).reads).to.equal(false);
    await waitFor('the downgrade to end in a', () => a.snapshot().downgrade === undefined);
    await waitFor('the downgrade to end in b', () => b.snapshot().downgrade === undefined);
    expect(a.forThread('acme', inside).reads).to.equal(true);
    expect(b.forThread('acme', inside).reads).to.equal(true);
    expect(await redis.exists(`${prefix}:flags:downgrade`)).to.equal(0);
    await b.refresh();
    expect(await metricValue(registry, 'memfleet_read_downgraded')).to.equal(0);
    expect(await metricValue(registry, 'memfleet_memory_mode', { mode: 'read_write' })).to.equal(1);
    // Failures still keep coming without a success in between: the next one downgrades again.
    expect(await a.recordAuthFailure()).to.equal(true);
  });

  it('ignores unreadable fields in Redis and keeps the readable ones', async () => {
    const { logger, lines } = capturedLogger();
    await redis.hset(`${prefix}:flags`, {
      mode: 'sometimes',
      canary_percent: '25',
      'tenant:acme:mode': 'off',
      'tenant:acme:canary_percent': 'lots',
      junk: '1',
    });
    const a = member({ logger });
    await a.start();
    expect(a.snapshot()).to.deep.include({
      mode: 'read_write',
      canaryPercent: 25,
      tenants: { acme: { mode: 'off' } },
    });
    await logged();
    expect(lines.filter((l) => /unreadable field/.test(l.message))).to.have.length(3);
  });

  it('keeps the last known flags, and warns, while Redis is unreachable; never throws from reads', async () => {
    const server = await startRedis();
    // As the worker connects: commands wait in the offline queue instead of failing.
    const own = new Redis(server.url, { maxRetriesPerRequest: null });
    own.on('error', () => undefined);
    const { logger, lines } = capturedLogger();
    const a = createFlags(own, {
      prefix,
      defaults: { mode: 'read_write', canaryPercent: 100 },
      refreshMs: 100,
      downgradeMs: 60_000,
      downgradeAuthFailures: 3,
      logger,
    });
    try {
      await a.start();
      const snap = await a.update({ mode: 'write_only', tenants: { acme: { mode: 'off' } } });
      await server.kill();
      await waitFor('a warning', () => lines.some((l) => l.level === 'warn'), 10_000);
      expect(lines.find((l) => l.level === 'warn')?.message).to.match(/keeping the last known/);
      const t0 = Date.now();
      await a.refresh();
      expect(Date.now() - t0, 'refresh gives up rather than hang').to.be.below(5000);
      expect(a.snapshot()).to.deep.equal(snap);
      expect(a.forThread('acme', inside).writes).to.equal(false);
      expect(a.forThread('globex', inside)).to.include({ mode: 'write_only', writes: true });
      await server.restart();
      await waitFor('Redis reachable again', () =>
        lines.some((l) => /reachable again/.test(l.message)),
      );
    } finally {
      a.stop();
      own.disconnect();
      await server.stop();
    }
  });

  it('recordAuthFailure and recordAuthSuccess do not throw when Redis fails fast', async () => {
    const dead = new Redis({ port: 1, maxRetriesPerRequest: 0, lazyConnect: true });
    dead.on('error', () => undefined);
    const { logger, lines } = capturedLogger();
    const a = createFlags(dead, {
      prefix,
      defaults: { mode: 'read_write', canaryPercent: 100 },
      refreshMs: 100,
      downgradeMs: 60_000,
      downgradeAuthFailures: 1,
      logger,
    });
    try {
      expect(await a.recordAuthFailure()).to.equal(false);
      await a.recordAuthSuccess();
      await a.refresh();
      expect(a.snapshot().source).to.equal('env');
      await logged();
      expect(lines.filter((l) => l.level === 'warn')).to.have.length(3);
      let caught: unknown;
      await a.update({ mode: 'off' }).catch((err: unknown) => (caught = err));
      expect(caught, 'update tells its caller').to.be.instanceOf(Error);
    } finally {
      dead.disconnect();
    }
  });
});
