// Run by leak-guard.int.test.ts in a mocha of its own: its first test leaks a listening server,
// which the root hooks must turn into a failure of that test alone.
import { createServer, type Server } from 'node:net';

describe('a suite with a leaky test', () => {
  let leaked: Server | undefined;

  after(() => {
    leaked?.close();
  });

  it('leaks a listening server', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    leaked = server;
  });

  it('still runs the next test', () => undefined);
});
