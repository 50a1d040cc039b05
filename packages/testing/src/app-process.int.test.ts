import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { startAppProcess } from './app-process.ts';

const fixture = fileURLToPath(new URL('./app-process.fixture.ts', import.meta.url));

describe('startAppProcess', () => {
  it('captures output lines, waits for them, and stops the app with SIGTERM', async () => {
    const app = startAppProcess(fixture, { name: 'fixture', env: { FIXTURE_GREETING: 'hi' } });
    try {
      const ready = await app.waitForLine(/"message":"fixture ready"/, 20_000);
      expect(JSON.parse(ready)).to.include({ greeting: 'hi' });
      await app.waitForLine(/^a line on stderr$/, 5000);

      const from = app.lines().length;
      app.signal('SIGUSR2');
      await app.waitForLine(/got SIGUSR2/, 5000, from);
      expect(await app.stop()).to.equal(3);
      expect(app.lines()).to.include('{"level":"info","message":"shutting down"}');
    } finally {
      await app.kill9();
    }
  });

  it('runs with a minimal environment unless asked to inherit', async () => {
    process.env.MEMFLEET_TEST_STRAY = 'x';
    const app = startAppProcess(fixture, { name: 'fixture', env: {} });
    try {
      const ready = await app.waitForLine(/fixture ready/, 20_000);
      expect(JSON.parse(ready)).to.include({ greeting: null });
    } finally {
      delete process.env.MEMFLEET_TEST_STRAY;
      await app.stop();
    }
  });

  it('SIGKILLs an app that ignores SIGTERM once the stop timeout passes', async () => {
    const app = startAppProcess(fixture, {
      name: 'stubborn',
      env: { FIXTURE_IGNORE_SIGTERM: '1' },
    });
    await app.waitForLine(/fixture ready/, 20_000);
    expect(await app.stop(500)).to.equal(null);
    expect(app.lines().some((l) => l.includes('ignoring SIGTERM'))).to.equal(true);
  });

  it('kill9 ends the app at once and waitForLine then fails fast', async () => {
    const app = startAppProcess(fixture, { name: 'victim', env: {} });
    await app.waitForLine(/fixture ready/, 20_000);
    await app.kill9();
    expect(await app.waitForExit(1000)).to.equal(null);
    let error: unknown;
    try {
      await app.waitForLine(/never printed/, 5000);
    } catch (err: unknown) {
      error = err;
    }
    expect(String(error)).to.match(/victim has exited/);
  });
});
