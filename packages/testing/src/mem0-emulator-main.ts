// Runs the mem0 emulator on its own, for local development against the real client:
// `pnpm emulator:mem0`, then give MemoryClient the printed url as `host` (or use it as the base of
// the self-hosted OSS server's API).
import { toError } from '@memfleet/errors/to-error';
import { startMem0Emulator, type Mem0EmulatorOptions } from './mem0-emulator.ts';

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

function optionsFrom(env: NodeJS.ProcessEnv): Mem0EmulatorOptions {
  const eventLagMs = integer(env, 'MEM0_EMULATOR_EVENT_LAG_MS', 0);
  return {
    host: nonEmpty(env, 'MEM0_EMULATOR_HOST') ?? '127.0.0.1',
    port: integer(env, 'MEM0_EMULATOR_PORT', 0, 65_535) ?? 8890,
    apiKeys: [nonEmpty(env, 'MEM0_EMULATOR_API_KEY') ?? 'mem0-emulator-key'],
    ...(eventLagMs === undefined ? {} : { eventLagMs }),
  };
}

const log = (level: 'info' | 'error', message: string, extra: Record<string, unknown> = {}) => {
  const stream = level === 'error' ? process.stderr : process.stdout;
  stream.write(`${JSON.stringify({ message, ...extra })}\n`);
};

let options: Mem0EmulatorOptions;
try {
  options = optionsFrom(process.env);
} catch (err: unknown) {
  log('error', toError(err).message);
  process.exit(2);
}

const emulator = await startMem0Emulator(options);
let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  try {
    await emulator.close();
    log('info', 'mem0 emulator stopped', { signal });
  } catch (err: unknown) {
    log('error', 'mem0 emulator shutdown failed', { error: toError(err).message });
    process.exitCode = 1;
  }
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
log('info', 'mem0 emulator listening', { url: emulator.url });
