// What the emulators' runners (`pnpm emulator:zep`, `pnpm emulator:mem0`) share: environment
// parsing, JSON log lines, and a clean stop on SIGTERM or SIGINT.
import { toError } from '@memfleet/errors/to-error';
import type { EmulatorListenOptions } from './emulator-server.ts';

/** An optional integer from `min` to `max` in `env[name]`; undefined when unset or empty. */
export function integer(
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

/** `env[name]` trimmed; undefined when unset, an error when blank. */
export function nonEmpty(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined) return undefined;
  if (raw.trim() === '') throw new Error(`${name} must not be empty`);
  return raw.trim();
}

/** Host, port and API key from `<prefix>_HOST`, `<prefix>_PORT` and `<prefix>_API_KEY`. */
export function listenOptionsFrom(
  env: NodeJS.ProcessEnv,
  prefix: string,
  defaults: { port: number; apiKey: string },
): Required<EmulatorListenOptions> {
  return {
    host: nonEmpty(env, `${prefix}_HOST`) ?? '127.0.0.1',
    port: integer(env, `${prefix}_PORT`, 0, 65_535) ?? defaults.port,
    apiKeys: [nonEmpty(env, `${prefix}_API_KEY`) ?? defaults.apiKey],
  };
}

const log = (level: 'info' | 'error', message: string, extra: Record<string, unknown> = {}) => {
  const stream = level === 'error' ? process.stderr : process.stdout;
  stream.write(`${JSON.stringify({ message, ...extra })}\n`);
};

/**
 * Reads the options from the environment (exit code 2 if they are bad), starts the emulator and
 * logs `'<name> emulator listening'` with its url; on SIGTERM or SIGINT closes it and logs
 * `'<name> emulator stopped'` (exit code 1 if closing fails).
 */
export async function runEmulator<Options>(
  name: string,
  optionsFrom: (env: NodeJS.ProcessEnv) => Options,
  start: (options: Options) => Promise<{ readonly url: string; close(): Promise<void> }>,
): Promise<void> {
  let options: Options;
  try {
    options = optionsFrom(process.env);
  } catch (err: unknown) {
    log('error', toError(err).message);
    process.exit(2);
  }

  const emulator = await start(options);
  let stopping = false;
  async function shutdown(signal: string): Promise<void> {
    if (stopping) return;
    stopping = true;
    try {
      await emulator.close();
      log('info', `${name} emulator stopped`, { signal });
    } catch (err: unknown) {
      log('error', `${name} emulator shutdown failed`, { error: toError(err).message });
      process.exitCode = 1;
    }
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  log('info', `${name} emulator listening`, { url: emulator.url });
}
