import { expect } from 'chai';
import { Redis } from 'ioredis';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HASH_MAX_LISTPACK_VALUE, startRedis } from './redis-server.ts';
import { repoRoot } from './repo-root.ts';

async function withClient<T>(url: string, fn: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    return await fn(client);
  } finally {
    await client.quit().catch(() => client.disconnect());
  }
}

describe('startRedis', () => {
  it('starts a private server that answers PING; stop() ends it and removes its directory', async () => {
    const server = await startRedis();
    try {
      expect(server.url).to.equal(`redis://127.0.0.1:${server.port}`);
      await withClient(server.url, async (c) => {
        expect(await c.ping()).to.equal('PONG');
        expect(await c.config('GET', 'maxmemory-policy')).to.deep.equal([
          'maxmemory-policy',
          'noeviction',
        ]);
        expect(await c.config('GET', 'appendonly')).to.deep.equal(['appendonly', 'no']);
        expect(await c.config('GET', 'hash-max-listpack-value')).to.deep.equal([
          'hash-max-listpack-value',
          HASH_MAX_LISTPACK_VALUE,
        ]);
        // The start command's Redis runs with the same.
        expect(readFileSync(join(repoRoot, 'scripts/start.sh'), 'utf8')).to.include(
          `--hash-max-listpack-value ${HASH_MAX_LISTPACK_VALUE}`,
        );
      });
    } finally {
      await server.stop();
    }
    expect(existsSync(server.dir)).to.equal(false);
    await server.stop();
  });

  it('keeps AOF-persisted keys across a SIGKILL and a graceful restart, on the same port', async () => {
    const server = await startRedis({ appendonly: true });
    try {
      const port = server.port;
      await withClient(server.url, (c) => c.set('survivor', 'still here'));
      await server.kill();
      await server.restart();
      expect(server.port).to.equal(port);
      expect(await withClient(server.url, (c) => c.get('survivor'))).to.equal('still here');

      await withClient(server.url, (c) => c.set('second', '2'));
      await server.restart();
      expect(await withClient(server.url, (c) => c.mget('survivor', 'second'))).to.deep.equal([
        'still here',
        '2',
      ]);
    } finally {
      await server.stop();
    }
  });

  it('applies extra arguments after the defaults', async () => {
    const server = await startRedis({ args: ['--maxmemory-policy', 'allkeys-lru'] });
    try {
      const policy = await withClient(server.url, (c) => c.config('GET', 'maxmemory-policy'));
      expect(policy).to.deep.equal(['maxmemory-policy', 'allkeys-lru']);
    } finally {
      await server.stop();
    }
  });
});
