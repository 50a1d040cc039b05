import { loadConfigOrExit } from '@memfleet/config/load-config';
import { toError } from '@memfleet/errors/to-error';
import { createLogger } from '@memfleet/logger/create-logger';
import { startApi } from './api-runtime.ts';

const config = loadConfigOrExit();
const logger = createLogger({ service: 'api', level: config.logLevel });
const api = await startApi(config, logger);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info('api stopping', { signal });
  try {
    await api.close();
    logger.info('api stopped');
  } catch (err: unknown) {
    logger.error('shutdown failed', { err: toError(err) });
    process.exitCode = 1;
  }
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
