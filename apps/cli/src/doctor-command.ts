import Table from 'cli-table3';
import type { Command } from 'commander';
import { runDoctor } from './doctor.ts';

/** `memfleet doctor`: checks the fleet's configuration, stores and backend; exit 0 when all pass. */
export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description(
      'Check the configuration, Redis (version, maxmemory-policy noeviction, AOF), Postgres and its migrations, and the memory backend through every method the fleet uses. Exit 0 when every check passes, 1 otherwise.',
    )
    .option('--json', 'print the checks as JSON instead of a table')
    .action(async (opts: { json?: boolean }) => {
      const checks = await runDoctor(process.env);
      const failed = checks.filter((c) => !c.ok);
      if (opts.json === true) {
        console.log(JSON.stringify(checks));
      } else {
        const table = new Table({
          head: ['check', 'result', 'detail', 'fix'],
          style: { head: [], border: [] },
          colWidths: [30, 8, 50, 50],
          wordWrap: true,
        });
        for (const c of checks) table.push([c.name, c.ok ? 'pass' : 'FAIL', c.detail, c.fix ?? '']);
        console.log(table.toString());
        console.log(
          `${checks.length - failed.length} passed, ${failed.length} failed${failed.length > 0 ? `: ${failed.map((c) => c.name).join('; ')}` : ''}`,
        );
      }
      if (failed.length > 0) process.exitCode = 1;
    });
}
