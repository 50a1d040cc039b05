import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { expect } from 'chai';
import { createTestDatabase, testRedisUrl, uniquePrefix } from '@memfleet/testing/fixtures';
import { freePort } from '@memfleet/testing/free-port';
import { guardChildProcess } from '@memfleet/testing/orphan-guard';
import { repoRoot } from '@memfleet/testing/repo-root';
import { waitFor } from '@memfleet/testing/wait-for';

/** Whether something accepts connections on 127.0.0.1:`port`. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Pids of every process under `pid` (from /proc), children first. */
function descendantsOf(pid: number): number[] {
  let children: number[];
  try {
    const text = readFileSync(`/proc/${String(pid)}/task/${String(pid)}/children`, 'utf8');
    children = text.split(' ').filter(Boolean).map(Number);
  } catch {
    children = [];
  }
  return children.flatMap((child) => [child, ...descendantsOf(child)]);
}

describe('npm start (the start command)', function () {
  this.timeout(120_000);

  it('stops the whole fleet when npm itself gets SIGTERM, as from a supervisor', async () => {
    const db = await createTestDatabase();
    const apiPort = await freePort();
    const readerPort = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      REDIS_URL: await testRedisUrl(),
      REDIS_KEY_PREFIX: uniquePrefix(),
      DATABASE_URL: db.url,
      MEMFLEET_API_KEYS: 'acme:start-command-key-0123456789',
      MEMFLEET_ADMIN_KEY: 'start-command-admin-0123456789',
      API_PORT: String(apiPort),
      READER_PORT: String(readerPort),
      WORKER_PROCESSES: '0',
    };
    // The test run has installed the dependencies; in CI the script would install them again.
    delete env.CI;
    let output = '';
    const npm: ChildProcess = spawn('npm', ['start'], { cwd: repoRoot, env, stdio: 'pipe' });
    npm.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    npm.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    // Should this test process die first, npm gets SIGTERM too, which stops what it started.
    guardChildProcess(npm, { exitSignal: 'SIGTERM' });
    const exited = new Promise<number | null>((resolve) => npm.once('exit', resolve));
    const started: number[] = [];
    try {
      await waitFor(
        'the fleet running',
        () => Promise.resolve(output.includes('memfleet is running')),
        90_000,
        200,
      );
      started.push(...descendantsOf(npm.pid ?? 0));
      expect(await listening(apiPort)).to.equal(true);
      expect(await listening(readerPort)).to.equal(true);

      npm.kill('SIGTERM');
      await exited;
      await waitFor(
        'the API and the reader stopped',
        async () => !(await listening(apiPort)) && !(await listening(readerPort)),
        30_000,
        200,
      );
      expect(output).to.include('memfleet stopped');
    } finally {
      // Whatever the outcome, nothing of this fleet outlives the test.
      for (const pid of started) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // Already gone.
        }
      }
      if (npm.exitCode === null) npm.kill('SIGKILL');
      await db.drop();
    }
  });
});
