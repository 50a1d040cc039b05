// Runs the Zep v3 emulator on its own, for local development against the real SDK:
// `pnpm emulator:zep`, then point ZEP_API_URL (or the SDK's baseUrl) at the printed url.
import { toError } from '@memfleet/errors/to-error';
import { startZepEmulator, type ZepEmulatorOptions } from './zep-emulator.ts';

function integer(
  env: NodeJS.ProcessEnv,
  name: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, got '${raw}'`);
  }
  return value;
}

function nonEmpty(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined) return undefined;
  if (raw.trim() === '') throw new Error(`${name} must not be empty`);
  return raw.trim();
}

function optionsFrom(env: NodeJS.ProcessEnv): ZepEmulatorOptions {
  const maxContentChars = integer(env, 'ZEP_EMULATOR_MAX_CONTENT_CHARS', 1);
  const processingLagMs = integer(env, 'ZEP_EMULATOR_PROCESSING_LAG_MS', 0);
  const rateLimitPerMinute = integer(env, 'ZEP_EMULATOR_RATE_LIMIT_PER_MINUTE', 1);
  return {
    host: nonEmpty(env, 'ZEP_EMULATOR_HOST') ?? '127.0.0.1',
    port: integer(env, 'ZEP_EMULATOR_PORT', 0, 65_535) ?? 8089,
    apiKeys: [nonEmpty(env, 'ZEP_EMULATOR_API_KEY') ?? 'zep-emulator-key'],
    ...(maxContentChars === undefined ? {} : { maxContentChars }),
    ...(processingLagMs === undefined ? {} : { processingLagMs }),
    ...(rateLimitPerMinute === undefined ? {} : { rateLimitPerMinute }),
  };
}

const log = (level: 'info' | 'error', message: string, extra: Record<string, unknown> = {}) => {
  const stream = level === 'error' ? process.stderr : process.stdout;
  stream.write(`${JSON.stringify({ message, ...extra })}\n`);
};

let options: ZepEmulatorOptions;
try {
  options = optionsFrom(process.env);
} catch (err: unknown) {
  log('error', toError(err).message);
  process.exit(2);
}

const emulator = await startZepEmulator(options);
let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  try {
    await emulator.close();
    log('info', 'zep emulator stopped', { signal });
  } catch (err: unknown) {
    log('error', 'zep emulator shutdown failed', { error: toError(err).message });
    process.exitCode = 1;
  }
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
log('info', 'zep emulator listening', { url: emulator.url });
