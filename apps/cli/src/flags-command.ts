import type { Command } from 'commander';
import { runFlagsCli } from '@memfleet/flags/flags-cli';

/** `memfleet flags [get | set … | unset … | clear-downgrade]`: the live flags, as `pnpm flags`. */
export function registerFlagsCommand(program: Command): void {
  program
    .command('flags')
    .description(
      'Live flags: get (default), set [--tenant T] mode=M canary=P, unset [--tenant T] [mode] [canary], clear-downgrade. `memfleet flags --help` for details.',
    )
    .argument('[args...]')
    .allowUnknownOption()
    .helpOption(false)
    .action(async (args: string[]) => {
      const code = await runFlagsCli(args);
      if (code !== 0) process.exitCode = code;
    });
}
