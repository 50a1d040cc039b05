import { loadConfigOrExit } from '@memfleet/config/load-config';
import { toError } from '@memfleet/errors/to-error';
import { createLogger } from '@memfleet/logger/create-logger';
import { startReader } from './reader-runtime.ts';

const config = loadConfigOrExit();
const logger = createLogger({ service: 'reader', level: config.logLevel });
const reader = await startReader(config, logger);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info('reader stopping', { signal });
  try {
    await reader.close();
    logger.info('reader stopped');
    // Every connection is closed; a timer the Zep SDK may leave armed must not hold the process.
    setImmediate(() => process.exit());
  } catch (err: unknown) {
    logger.error('shutdown failed', { err: toError(err) });
    process.exitCode = 1;
  }
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
