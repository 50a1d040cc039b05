// A stand-in app for app-process.int.test.ts: logs JSON lines like the real apps and shuts down
// on SIGTERM, unless told to ignore it.
const log = (message: string, extra: Record<string, unknown> = {}): void => {
  process.stdout.write(`${JSON.stringify({ level: 'info', message, ...extra })}\n`);
};

const keepAlive = setInterval(() => undefined, 1000);
process.on('SIGUSR2', () => log('got SIGUSR2'));
process.on('SIGTERM', () => {
  if (process.env.FIXTURE_IGNORE_SIGTERM === '1') {
    log('ignoring SIGTERM');
    return;
  }
  log('shutting down');
  clearInterval(keepAlive);
  process.exitCode = 3;
});

// Last, like a real app: once a test sees this line, the signal handlers above are in place.
process.stderr.write('a line on stderr\n');
log('fixture ready', { greeting: process.env.FIXTURE_GREETING ?? null });
