// The baseline of the `enqueue` and `read` benches: a bare Express 5 app that parses the JSON body
// of a POST and echoes it, and answers a GET with a small JSON object. Same framework, same process
// model (its own Node process started like the apps) and same load as the app it is compared with.
//
//   BENCH_ECHO_PORT (0 for any free port)
import express from 'express';

const app = express();
app.disable('x-powered-by');
app.use(express.json({ limit: '1mb' }));
app.post('/{*path}', (req, res) => {
  res.status(202).json(req.body);
});
app.get('/{*path}', (_req, res) => {
  res.json({ used: true, source: 'echo', took_ms: 0, context: '', messages: [] });
});
const server = app.listen(Number(process.env.BENCH_ECHO_PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  console.log(
    JSON.stringify({ message: 'echo listening', url: `http://127.0.0.1:${String(port)}` }),
  );
});
process.once('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
