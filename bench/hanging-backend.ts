// A memory backend that hangs: an HTTP server, in its own process, that reads every request and
// never answers it (until the client gives up). The `read` bench points the reader's Zep URL at
// it, so the thousands of calls left open stay out of the load generator's process.
//
//   BENCH_HANGING_PORT (0 for any free port)
import { createServer, type ServerResponse } from 'node:http';

const open = new Set<ServerResponse>();
const server = createServer((req, res) => {
  req.resume();
  open.add(res);
  res.on('close', () => open.delete(res));
});
server.keepAliveTimeout = 120_000;
server.listen(Number(process.env.BENCH_HANGING_PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  console.log(
    JSON.stringify({
      message: 'hanging backend listening',
      url: `http://127.0.0.1:${String(port)}`,
    }),
  );
});
process.once('SIGTERM', () => {
  for (const res of open) res.destroy();
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
