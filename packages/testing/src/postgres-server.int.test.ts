import { expect } from 'chai';
import pg from 'pg';
import { createTestDatabase, testDatabaseUrl } from './fixtures.ts';
import { startPostgres } from './postgres-server.ts';
import { withPgClient } from './with-pg-client.ts';

describe('startPostgres', () => {
  it('starts a private server that answers select 1 and is gone after stop()', async () => {
    const server = await startPostgres();
    try {
      expect(server.url).to.match(/^postgres:\/\/\/postgres\?host=%2F.+&port=\d+&user=postgres$/);
      expect(server.tcpUrl).to.match(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
      // inet_client_addr() is null over a Unix socket and the client's address over TCP.
      const clientAddr = (url: string): Promise<string | null> =>
        withPgClient(
          url,
          async (c) =>
            (await c.query<{ addr: string | null }>('select inet_client_addr()::text as addr'))
              .rows[0]?.addr ?? null,
        );
      expect(await clientAddr(server.url)).to.equal(null);
      expect(await clientAddr(server.tcpUrl)).to.equal('127.0.0.1/32');
      const settings = await withPgClient(server.url, async (c) => {
        const res = await c.query<{ name: string; setting: string }>(
          `select name, setting from pg_settings
           where name in ('fsync', 'synchronous_commit', 'full_page_writes', 'max_connections', 'server_encoding')
           order by name`,
        );
        return Object.fromEntries(res.rows.map((r) => [r.name, r.setting]));
      });
      expect(settings).to.deep.equal({
        fsync: 'off',
        full_page_writes: 'off',
        max_connections: '300',
        server_encoding: 'UTF8',
        synchronous_commit: 'off',
      });
    } finally {
      await server.stop();
    }
    let error: unknown;
    try {
      await withPgClient(server.url, (c) => c.query('select 1'), 1000);
    } catch (err: unknown) {
      error = err;
    }
    expect(error).to.be.instanceOf(Error);
  });
});

describe('createTestDatabase', () => {
  it('creates an isolated database and drop() removes it even with a connection open', async () => {
    const db = await createTestDatabase();
    const name = new URL(db.url).pathname.slice(1);
    const client = new pg.Client({ connectionString: db.url });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('create table t (id int primary key)');
      await client.query('insert into t values (1)');
      expect((await client.query('select current_database() as db')).rows).to.deep.equal([
        { db: name },
      ]);
      await db.drop();
    } finally {
      await client.end().catch(() => undefined);
      await db.drop();
    }
    const left = await withPgClient(await testDatabaseUrl(), async (c) => {
      const res = await c.query('select 1 from pg_database where datname = $1', [name]);
      return res.rowCount;
    });
    expect(left).to.equal(0);
  });

  it('gives every call its own database', async () => {
    const [a, b] = await Promise.all([createTestDatabase(), createTestDatabase()]);
    try {
      expect(a.url).to.not.equal(b.url);
    } finally {
      await Promise.all([a.drop(), b.drop()]);
    }
  });
});
