import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { migrate } from '@memfleet/db/migrate';
import { startAppProcess } from '@memfleet/testing/app-process';
import { createTestDatabase, type TestDatabase } from '@memfleet/testing/fixtures';
import { startMem0Emulator, type Mem0Emulator } from '@memfleet/testing/mem0-emulator';
import { startRedis, type RedisServer } from '@memfleet/testing/redis-server';
import { startZepEmulator, type ZepEmulator } from '@memfleet/testing/zep-emulator';

const CLI = 'apps/cli/src/main.ts';
const BACKEND_OPS = [
  'ensure_user',
  'ensure_thread',
  'add_messages',
  'find_written',
  'recent_messages',
  'get_context',
  'erase_user',
];

interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

describe('memfleet doctor', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let migrated: TestDatabase;
  let bare: TestDatabase;
  let zep: ZepEmulator;
  let mem0: Mem0Emulator;
  let mem0Dir = '';

  before(async () => {
    // Its own Redis, as a fleet runs it (AOF on, noeviction), since one test changes its policy.
    redis = await startRedis({ appendonly: true });
    migrated = await createTestDatabase();
    await migrate(migrated.url);
    bare = await createTestDatabase();
    zep = await startZepEmulator({ apiKeys: ['zep-doctor-key'] });
    mem0 = await startMem0Emulator({ apiKeys: ['mem0-doctor-key'] });
    mem0Dir = await mkdtemp(join(tmpdir(), 'memfleet-doctor-mem0-'));
  });
  after(async () => {
    await redis.stop();
    await migrated.drop();
    await bare.drop();
    await zep.close();
    await mem0.close();
    await rm(mem0Dir, { recursive: true, force: true });
  });

  async function doctor(env: Record<string, string>, table = false) {
    const proc = startAppProcess(CLI, {
      name: 'memfleet-doctor',
      args: table ? ['doctor'] : ['doctor', '--json'],
      env: {
        REDIS_URL: redis.url,
        DATABASE_URL: migrated.url,
        MEMFLEET_API_KEYS: 'acme:acme-key-0123456789abcdef',
        MEMFLEET_ADMIN_KEY: 'admin-key-0123456789abcdef',
        MEM0_DIR: mem0Dir,
        ...env,
      },
    });
    const code = await proc.waitForExit(60_000);
    const out = proc.lines().join('\n');
    const json = out.split('\n').find((l) => l.startsWith('['));
    return { code, out, checks: json === undefined ? [] : (JSON.parse(json) as Check[]) };
  }

  const failing = (checks: Check[]) => checks.filter((c) => !c.ok).map((c) => c.name);

  it('passes a healthy fleet on postgres and prints the table', async () => {
    const { code, checks } = await doctor({});
    expect(failing(checks)).to.deep.equal([]);
    expect(code).to.equal(0);
    const names = checks.map((c) => c.name);
    for (const name of [
      'redis: maxmemory-policy',
      'redis: AOF persistence',
      'postgres: migrations',
    ]) {
      expect(names).to.include(name);
    }
    for (const op of BACKEND_OPS) expect(names).to.include(`backend postgres: ${op}`);
    const table = await doctor({}, true);
    expect(table.code).to.equal(0);
    expect(table.out).to.match(/redis: maxmemory-policy\s*│\s*pass/);
    expect(table.out).to.include(`${checks.length} passed, 0 failed`);
  });

  it('passes every backend method on Zep and on mem0 (emulators) with good keys', async () => {
    const onZep = await doctor({
      MEMORY_BACKEND: 'zep',
      ZEP_API_KEY: 'zep-doctor-key',
      ZEP_API_URL: zep.url,
    });
    expect(failing(onZep.checks)).to.deep.equal([]);
    expect(onZep.code).to.equal(0);
    for (const op of BACKEND_OPS) {
      expect(onZep.checks.map((c) => c.name)).to.include(`backend zep: ${op}`);
    }
    // The scratch user is gone again.
    expect(zep.userIds().filter((u) => u.startsWith('memfleet-doctor:'))).to.deep.equal([]);

    const onMem0 = await doctor({
      MEMORY_BACKEND: 'mem0',
      MEM0_API_KEY: 'mem0-doctor-key',
      MEM0_API_URL: mem0.url,
      MEM0_API_STYLE: 'platform',
    });
    expect(failing(onMem0.checks)).to.deep.equal([]);
    expect(onMem0.code).to.equal(0);
    expect(mem0.memories({ user_id: '*' })).to.deep.equal([]);
  });

  it('fails naming each problem: eviction policy, missing migrations, a wrong backend key', async () => {
    const admin = new Redis(redis.url);
    try {
      await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
      const { code, checks } = await doctor({
        DATABASE_URL: bare.url,
        MEMORY_BACKEND: 'zep',
        ZEP_API_KEY: 'a-wrong-key',
        ZEP_API_URL: zep.url,
      });
      expect(code).to.equal(1);
      expect(failing(checks)).to.deep.equal([
        'redis: maxmemory-policy',
        'postgres: migrations',
        'backend zep: ensure_user',
      ]);
      const byName = new Map(checks.map((c) => [c.name, c]));
      expect(byName.get('redis: maxmemory-policy')).to.deep.include({ detail: 'allkeys-lru' });
      expect(byName.get('redis: maxmemory-policy')?.fix).to.match(/noeviction/);
      expect(byName.get('postgres: migrations')?.detail).to.match(/not applied: \d+_ledger/);
      expect(byName.get('postgres: migrations')?.fix).to.include('pnpm migrate');
      expect(byName.get('backend zep: ensure_user')?.fix).to.include('ZEP_API_KEY');
    } finally {
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await admin.quit();
    }
  });

  it('names every bad variable when the configuration is invalid', async () => {
    const { code, checks } = await doctor({ MEMORY_BACKEND: 'redis', READ_BUDGET_MS: 'fast' });
    expect(code).to.equal(1);
    expect(failing(checks)).to.include.members([
      'config: MEMORY_BACKEND',
      'config: READ_BUDGET_MS',
    ]);
  });
});
