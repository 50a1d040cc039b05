import { expect } from 'chai';
import { Redis } from 'ioredis';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testRedisUrl } from './fixtures.ts';
import { LeakGuard } from './leak-guard.ts';
import { repoRoot } from './repo-root.ts';

const guard = new LeakGuard();

describe('leak guard', () => {
  it('passes a test that opens and closes an ioredis connection (on a lazily started Redis)', async () => {
    const client = new Redis(await testRedisUrl());
    expect(await client.ping()).to.equal('PONG');
    await client.quit();
  });

  it('reports a connection left open, and is satisfied once it is closed', async () => {
    const baseline = guard.snapshot();
    const client = new Redis(await testRedisUrl());
    try {
      await client.ping();
      const report = await guard.check(baseline, { timeoutMs: 200 });
      expect(report).to.match(/resource leak: TCPSocketWrap x1 /);
    } finally {
      await client.quit();
    }
    expect(await guard.check(baseline)).to.equal(undefined);
  });

  it('reports a child process left running', async () => {
    const baseline = guard.snapshot();
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      expect(await guard.check(baseline, { timeoutMs: 200 })).to.match(/ProcessWrap x1/);
    } finally {
      child.kill('SIGKILL');
    }
    expect(await guard.check(baseline)).to.equal(undefined);
  });

  it('counts resources granted with LeakGuard.allow as part of the baseline', async () => {
    const baseline = guard.snapshot();
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    const release = LeakGuard.allow({ ProcessWrap: 1 });
    try {
      expect(await guard.check(baseline, { timeoutMs: 200 })).to.equal(undefined);
    } finally {
      release();
      child.kill('SIGKILL');
    }
    expect(await guard.check(baseline)).to.equal(undefined);
  });

  it('fails the leaking test through the mocha root hooks, and only that test', async () => {
    const mocha = join(repoRoot, 'node_modules', 'mocha', 'bin', 'mocha.js');
    const spec = fileURLToPath(new URL('./leak-guard.fixture.ts', import.meta.url));
    const hooks = fileURLToPath(new URL('./mocha-hooks.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      [
        mocha,
        '--no-config',
        '--node-option',
        'import=tsx',
        '--require',
        hooks,
        '--reporter',
        'spec',
        '--timeout',
        '10000',
        spec,
      ],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(output).to.match(/resource leak: TCPServerWrap x1 /);
    expect(output).to.match(/1 failing/);
    expect(output).to.match(/still runs the next test/);
    expect(code, output).to.equal(1);
  });
});
