// Runs the mem0 emulator on its own, for local development against the real client:
// `pnpm emulator:mem0`, then give MemoryClient the printed url as `host` (or use it as the base of
// the self-hosted OSS server's API).
import { integer, listenOptionsFrom, runEmulator } from './emulator-runner.ts';
import { startMem0Emulator, type Mem0EmulatorOptions } from './mem0-emulator.ts';

function optionsFrom(env: NodeJS.ProcessEnv): Mem0EmulatorOptions {
  const eventLagMs = integer(env, 'MEM0_EMULATOR_EVENT_LAG_MS', 0);
  return {
    ...listenOptionsFrom(env, 'MEM0_EMULATOR', { port: 8890, apiKey: 'mem0-emulator-key' }),
    ...(eventLagMs === undefined ? {} : { eventLagMs }),
  };
}

await runEmulator('mem0', optionsFrom, startMem0Emulator);
