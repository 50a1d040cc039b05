// Runs the Zep v3 emulator on its own, for local development against the real SDK:
// `pnpm emulator:zep`, then point ZEP_API_URL (or the SDK's baseUrl) at the printed url.
import { integer, listenOptionsFrom, runEmulator } from './emulator-runner.ts';
import { startZepEmulator, type ZepEmulatorOptions } from './zep-emulator.ts';

function optionsFrom(env: NodeJS.ProcessEnv): ZepEmulatorOptions {
  const maxContentChars = integer(env, 'ZEP_EMULATOR_MAX_CONTENT_CHARS', 1);
  const processingLagMs = integer(env, 'ZEP_EMULATOR_PROCESSING_LAG_MS', 0);
  const rateLimitPerMinute = integer(env, 'ZEP_EMULATOR_RATE_LIMIT_PER_MINUTE', 1);
  return {
    ...listenOptionsFrom(env, 'ZEP_EMULATOR', { port: 8089, apiKey: 'zep-emulator-key' }),
    ...(maxContentChars === undefined ? {} : { maxContentChars }),
    ...(processingLagMs === undefined ? {} : { processingLagMs }),
    ...(rateLimitPerMinute === undefined ? {} : { rateLimitPerMinute }),
  };
}

await runEmulator('zep', optionsFrom, startZepEmulator);
