import { loadConfigOrExit } from '@memfleet/config/load-config';
import { toError } from '@memfleet/errors/to-error';
import { createLogger } from '@memfleet/logger/create-logger';
import { startWorker } from './worker-runtime.ts';

const config = loadConfigOrExit();
const logger = createLogger({ service: 'worker', level: config.logLevel });
const worker = await startWorker(config, logger);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info('worker stopping', { signal });
  try {
    await worker.close();
    logger.info('worker stopped');
    // Every connection is closed; exiting now also drops a timer the Zep SDK can leave armed
    // after a failed fetch (up to its request timeout), which would hold the process open.
    setImmediate(() => process.exit());
  } catch (err: unknown) {
    logger.error('shutdown failed', { err: toError(err) });
    process.exitCode = 1;
  }
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
