import { createServer } from 'node:net';

/**
 * Asks the kernel for a currently free TCP port on `host` (default `127.0.0.1`).
 *
 * The port is released before it is returned, so another process can take it before the caller
 * binds it: callers must retry with a fresh port when their server fails with EADDRINUSE.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close((err) => {
        if (err) reject(err);
        else if (port > 0) resolvePort(port);
        else reject(new Error(`could not get a free port on ${host}`));
      });
    });
  });
}
