import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyDigest } from './api-keys.ts';
import { ConfigError, loadConfig } from './load-config.ts';

const base = {
  REDIS_URL: 'redis://127.0.0.1:6379',
  DATABASE_URL: 'postgres://u@127.0.0.1:5432/memfleet',
  MEMFLEET_API_KEYS: 'acme:acme-key-0123456789abcdef,globex:globex-key-0123456789abc',
  MEMFLEET_ADMIN_KEY: 'admin-key-0123456789abcdef',
};

function issuesOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
  } catch (err: unknown) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig(base);
    expect(c.memoryBackend).to.equal('postgres');
    expect(c.memoryMode).to.equal('read_write');
    expect(c.readBudgetMs).to.equal(250);
    expect(c.readCanaryPercent).to.equal(100);
    expect(c.api.port).to.equal(3000);
    expect(c.redisKeyPrefix).to.equal('{memfleet}');
    expect(c.apiKeys).to.deep.equal([
      { tenant: 'acme', digest: keyDigest('acme-key-0123456789abcdef'), scopes: ['read', 'write'] },
      {
        tenant: 'globex',
        digest: keyDigest('globex-key-0123456789abc'),
        scopes: ['read', 'write'],
      },
    ]);
    expect(c.adminKeyDigest).to.equal(keyDigest('admin-key-0123456789abcdef'));
    expect(c.rateLimits).to.deep.equal({
      enqueue: { perSecond: 1000, burst: 2000 },
      read: { perSecond: 2000, burst: 4000 },
    });
  });

  it("takes a Postgres Unix socket in libpq's URL form and names a URL that is not Postgres", () => {
    const socket = 'postgres:///memfleet?host=%2Fsrv%2Fmemfleet%2Frun&port=5432&user=postgres';
    expect(loadConfig({ ...base, DATABASE_URL: socket }).databaseUrl).to.equal(socket);
    for (const bad of ['mysql://u@127.0.0.1/memfleet', '127.0.0.1:5432']) {
      expect(
        issuesOf({ ...base, DATABASE_URL: bad }).some((i) => i.startsWith('DATABASE_URL')),
        bad,
      ).to.equal(true);
    }
  });

  it('names every missing variable', () => {
    const issues = issuesOf({});
    for (const name of ['REDIS_URL', 'DATABASE_URL', 'MEMFLEET_API_KEYS', 'MEMFLEET_ADMIN_KEY']) {
      expect(
        issues.some((i) => i.startsWith(name)),
        name,
      ).to.equal(true);
    }
  });

  it('requires MEM0_API_KEY for the mem0 backend, defaults to the platform, and names bad mem0 settings', () => {
    expect(issuesOf({ ...base, MEMORY_BACKEND: 'mem0' })).to.deep.equal([
      'MEM0_API_KEY: required when MEMORY_BACKEND=mem0',
    ]);
    const c = loadConfig({ ...base, MEMORY_BACKEND: 'mem0', MEM0_API_KEY: 'm0-1' });
    expect(c.mem0).to.deep.equal({
      apiKey: 'm0-1',
      apiUrl: 'https://api.mem0.ai',
      style: 'auto',
      batchSize: 20,
      eventTimeoutMs: 60_000,
      infer: true,
      onEmpty: 'dead',
    });
    expect(loadConfig(base).mem0).to.equal(undefined);
    const issues = issuesOf({
      ...base,
      MEMORY_BACKEND: 'mem0',
      MEM0_API_KEY: 'm0-1',
      MEM0_API_STYLE: 'graphql',
      MEM0_EMPTY_RESULT: 'ignore',
      MEM0_BATCH_SIZE: '0',
    });
    for (const name of ['MEM0_API_STYLE', 'MEM0_EMPTY_RESULT', 'MEM0_BATCH_SIZE']) {
      expect(
        issues.some((i) => i.startsWith(name)),
        name,
      ).to.equal(true);
    }
  });

  it('reads read-only dashboard keys and rejects short ones or ones equal to another key', () => {
    expect(
      loadConfig({ ...base, MEMFLEET_DASHBOARD_KEYS: ' v1-0123456789abcdef , v2-0123456789abcdef' })
        .dashboardKeyDigests,
    ).to.deep.equal([keyDigest('v1-0123456789abcdef'), keyDigest('v2-0123456789abcdef')]);
    expect(loadConfig(base).dashboardKeyDigests).to.deep.equal([]);
    expect(
      issuesOf({ ...base, MEMFLEET_DASHBOARD_KEYS: `short,${base.MEMFLEET_ADMIN_KEY}` }),
    ).to.deep.equal([
      'MEMFLEET_DASHBOARD_KEYS: key 1: the key must be at least 16 characters',
      'MEMFLEET_DASHBOARD_KEYS: key 2 must differ from the admin and tenant keys',
    ]);
  });

  describe('tenant keys', () => {
    const acme = 'acme-key-0123456789abcdef';
    const hex = keyDigest('hashed-key-0123456789abcdef');

    it('reads scopes, several keys per tenant and sha256= digests; never keeps a plain key', () => {
      const c = loadConfig({
        ...base,
        MEMFLEET_API_KEYS: `acme:${acme}:read, acme:sha256=${hex.toUpperCase()}:write,acme:a:b:c-0123456789abcdef`,
        MEMFLEET_ADMIN_KEY: `sha256=${keyDigest('admin-key-0123456789abcdef')}`,
      });
      expect(c.apiKeys).to.deep.equal([
        { tenant: 'acme', digest: keyDigest(acme), scopes: ['read'] },
        { tenant: 'acme', digest: hex, scopes: ['write'] },
        { tenant: 'acme', digest: keyDigest('a:b:c-0123456789abcdef'), scopes: ['read', 'write'] },
      ]);
      expect(c.adminKeyDigest).to.equal(keyDigest('admin-key-0123456789abcdef'));
      expect(JSON.stringify(c)).not.to.include(acme);
    });

    it('reads MEMFLEET_API_KEYS_FILE beside MEMFLEET_API_KEYS, skipping comments and blank lines', () => {
      const dir = mkdtempSync(join(tmpdir(), 'memfleet-keys-'));
      const file = join(dir, 'keys');
      writeFileSync(
        file,
        `# tenants\n\nglobex:sha256=${hex}:rw\n  initech:initech-key-0123456789ab:read\n`,
      );
      const c = loadConfig({
        ...base,
        MEMFLEET_API_KEYS: `acme:${acme}`,
        MEMFLEET_API_KEYS_FILE: file,
      });
      expect(c.apiKeys.map((k) => [k.tenant, k.scopes.join('+')])).to.deep.equal([
        ['acme', 'read+write'],
        ['globex', 'read+write'],
        ['initech', 'read'],
      ]);
      const { MEMFLEET_API_KEYS: _unused, ...withoutEnv } = base;
      expect(loadConfig({ ...withoutEnv, MEMFLEET_API_KEYS_FILE: file }).apiKeys).to.have.length(2);
    });

    it('names the variable and the entry or line of every bad key, without echoing it', () => {
      const dir = mkdtempSync(join(tmpdir(), 'memfleet-keys-'));
      const file = join(dir, 'keys');
      writeFileSync(
        file,
        'ok:ok-key-0123456789abcdef\nBad:bad-key-0123456789abcdef\nx:sha256=abc\n',
      );
      const issues = issuesOf({
        ...base,
        MEMFLEET_API_KEYS: `acme:short,acme:${acme},globex:${acme}`,
        MEMFLEET_API_KEYS_FILE: file,
      });
      expect(issues).to.deep.equal([
        'MEMFLEET_API_KEYS: entry 1: the key must be at least 16 characters',
        `MEMFLEET_API_KEYS_FILE: ${file} line 2: must be tenant:key[:scope] with a tenant of lowercase letters, digits, - and _ (at most 63)`,
        `MEMFLEET_API_KEYS_FILE: ${file} line 3: sha256= must be followed by 64 hex digits`,
        'MEMFLEET_API_KEYS: tenants acme and globex share a key',
      ]);
      expect(issues.join('\n')).not.to.include(acme);
      expect(issuesOf({ ...base, MEMFLEET_API_KEYS_FILE: join(dir, 'missing') })[0]).to.match(
        /^MEMFLEET_API_KEYS_FILE: cannot read .*missing \(ENOENT\)$/,
      );
      expect(issuesOf({ ...base, MEMFLEET_ADMIN_KEY: `sha256=${'z'.repeat(64)}` })).to.deep.equal([
        'MEMFLEET_ADMIN_KEY: sha256= must be followed by 64 hex digits',
      ]);
      expect(issuesOf({ ...base, MEMFLEET_ADMIN_KEY: `sha256=${keyDigest(acme)}` })).to.deep.equal([
        'MEMFLEET_ADMIN_KEY: must differ from every tenant key',
      ]);
    });

    it('reads the rate limits and refuses bad ones', () => {
      const c = loadConfig({ ...base, RATE_LIMIT_ENQUEUE_PER_S: '5', RATE_LIMIT_READ_BURST: '0' });
      expect(c.rateLimits.enqueue.perSecond).to.equal(5);
      expect(c.rateLimits.read.burst).to.equal(0);
      expect(issuesOf({ ...base, RATE_LIMIT_READ_PER_S: '-1' })[0]).to.match(
        /^RATE_LIMIT_READ_PER_S:/,
      );
    });
  });

  it('requires ZEP_API_KEY for the zep backend and defaults to Zep Cloud', () => {
    expect(issuesOf({ ...base, MEMORY_BACKEND: 'zep' })).to.deep.equal([
      'ZEP_API_KEY: required when MEMORY_BACKEND=zep',
    ]);
    const c = loadConfig({ ...base, MEMORY_BACKEND: 'zep', ZEP_API_KEY: 'z_1' });
    expect(c.zep).to.deep.equal({
      apiKey: 'z_1',
      apiUrl: 'https://api.getzep.com/api/v2',
      batchSize: 30,
      messageMaxChars: 2500,
    });
    expect(loadConfig(base).zep).to.equal(undefined);
  });

  it('rejects a Zep batch over the API limit of 30 and a non-http Zep URL', () => {
    const issues = issuesOf({
      ...base,
      MEMORY_BACKEND: 'zep',
      ZEP_API_KEY: 'z_1',
      ZEP_BATCH_SIZE: '31',
      ZEP_API_URL: 'ftp://zep.example/api/v2',
    });
    expect(issues.some((i) => i.startsWith('ZEP_BATCH_SIZE'))).to.equal(true);
    expect(issues.some((i) => i.startsWith('ZEP_API_URL'))).to.equal(true);
  });

  it('rejects an unknown backend and a non-numeric budget by name', () => {
    const issues = issuesOf({ ...base, MEMORY_BACKEND: 'redis', READ_BUDGET_MS: 'fast' });
    expect(issues.some((i) => i.startsWith('MEMORY_BACKEND'))).to.equal(true);
    expect(issues.some((i) => i.startsWith('READ_BUDGET_MS'))).to.equal(true);
  });

  it('rejects malformed API keys and an admin key shared with a tenant', () => {
    expect(issuesOf({ ...base, MEMFLEET_API_KEYS: 'no-colon' })[0]).to.match(/^MEMFLEET_API_KEYS/);
    expect(issuesOf({ ...base, MEMFLEET_ADMIN_KEY: 'acme-key-0123456789abcdef' })[0]).to.match(
      /^MEMFLEET_ADMIN_KEY/,
    );
  });

  it('maps the legacy Zep flags and rejects contradictions', () => {
    expect(loadConfig({ ...base, FLAG_ZEP_WRITE: 'true' }).memoryMode).to.equal('write_only');
    expect(loadConfig({ ...base, FLAG_ZEP_WRITE: '1', FLAG_ZEP_READ: '1' }).memoryMode).to.equal(
      'read_write',
    );
    expect(loadConfig({ ...base, FLAG_ZEP_WRITE: 'false' }).memoryMode).to.equal('off');
    expect(issuesOf({ ...base, MEMORY_MODE: 'off', FLAG_ZEP_READ: 'true' })).to.have.length(1);
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ ...base, READ_BUDGET_MS: '' }).readBudgetMs).to.equal(250);
  });
});
