import { expect } from 'chai';
import { Redis } from 'ioredis';
import type { MemoryMode } from '@memfleet/config/load-config';
import { createFlags, inCanary } from './flags.ts';

const threadIds = Array.from({ length: 10_000 }, (_, i) => `thread-${i}-${(i * 7919) % 1000}`);

describe('inCanary', () => {
  it('selects about the given share of threads, and the same ones every time', () => {
    const first = threadIds.filter((id) => inCanary(id, 10));
    expect(first.length).to.be.within(900, 1100);
    const second = threadIds.filter((id) => inCanary(id, 10));
    expect(second).to.deep.equal(first);
  });

  it('grows the selection with the percentage: a thread in at 10 % is in at 50 %', () => {
    const at10 = threadIds.filter((id) => inCanary(id, 10));
    const at50 = new Set(threadIds.filter((id) => inCanary(id, 50)));
    expect(at50.size).to.be.within(4800, 5200);
    expect(at10.every((id) => at50.has(id))).to.equal(true);
  });

  it('selects none at 0 and all at 100', () => {
    expect(threadIds.filter((id) => inCanary(id, 0))).to.have.length(0);
    expect(threadIds.filter((id) => inCanary(id, 100))).to.have.length(threadIds.length);
  });
});

describe('Flags.forThread with the env defaults (no Redis contacted)', () => {
  // lazyConnect: nothing here talks to Redis; the flags are the defaults until a load.
  const redis = new Redis({ lazyConnect: true });
  const flags = (mode: MemoryMode, canaryPercent = 100) =>
    createFlags(redis, {
      prefix: '{unit}',
      defaults: { mode, canaryPercent },
      refreshMs: 1000,
      downgradeMs: 60_000,
      downgradeAuthFailures: 3,
    });
  const inside = threadIds.find((id) => inCanary(id, 10)) ?? '';
  const outside = threadIds.find((id) => !inCanary(id, 10)) ?? '';

  it('off: no writes, no reads (mode_off)', () => {
    expect(flags('off').forThread('acme', inside)).to.deep.equal({
      mode: 'off',
      writes: false,
      reads: false,
      inCanary: true,
      readBlockedBy: 'mode_off',
    });
  });

  it('write_only: writes, no reads (mode_off)', () => {
    expect(flags('write_only').forThread('acme', inside)).to.deep.equal({
      mode: 'write_only',
      writes: true,
      reads: false,
      inCanary: true,
      readBlockedBy: 'mode_off',
    });
  });

  it('read_write: reads only for threads in the canary', () => {
    const f = flags('read_write', 10);
    expect(f.forThread('acme', inside)).to.deep.equal({
      mode: 'read_write',
      writes: true,
      reads: true,
      inCanary: true,
    });
    expect(f.forThread('acme', outside)).to.deep.equal({
      mode: 'read_write',
      writes: true,
      reads: false,
      inCanary: false,
      readBlockedBy: 'not_in_canary',
    });
  });

  it('snapshot: the env values, source env', () => {
    expect(flags('write_only', 25).snapshot()).to.deep.equal({
      mode: 'write_only',
      canaryPercent: 25,
      tenants: {},
      downgrade: undefined,
      source: 'env',
    });
  });

  it('update rejects a bad patch naming the field, before touching Redis', async () => {
    const f = flags('read_write');
    const bad = [
      [{ mode: 'sometimes' as MemoryMode }, /^mode:/],
      [{ canaryPercent: 101 }, /^canaryPercent:/],
      [{ tenants: { 'Not A Tenant': { mode: 'off' as const } } }, /^tenants\.Not A Tenant:/],
      [{ tenants: { acme: { canaryPercent: -1 } } }, /^tenants\.acme\.canaryPercent:/],
    ] as const;
    for (const [patch, message] of bad) {
      let caught: unknown;
      try {
        await f.update(patch);
      } catch (err: unknown) {
        caught = err;
      }
      expect(caught, JSON.stringify(patch)).to.be.instanceOf(RangeError);
      expect((caught as Error).message).to.match(message);
    }
    expect(redis.status).to.equal('wait');
  });
});
