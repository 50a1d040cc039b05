// `pnpm bench` runs every scenario in turn; `pnpm bench <name>` runs one (enqueue, e2e, read,
// redaction). Each prints a table (ratio to its baseline, pass or fail against its acceptance
// target) and writes bench/results/<name>.json and <name>.svg. Loopback only; each scenario is
// bounded in time and stops by itself. Benches are not tests: no CI step runs them.
import { stopFixtures } from '@memfleet/testing/fixtures';
import { benchE2e } from './bench-e2e.ts';
import { benchEnqueue } from './bench-enqueue.ts';
import { benchRead } from './bench-read.ts';
import { benchRedaction } from './bench-redaction.ts';
import { machine, printTable, writeResult, type ScenarioResult } from './suite-lib.ts';

const scenarios: Record<string, { run: () => Promise<ScenarioResult>; baseline: string }> = {
  enqueue: { run: benchEnqueue, baseline: 'bare Express JSON echo' },
  e2e: { run: benchE2e, baseline: 'raw BullMQ no-op jobs' },
  read: { run: benchRead, baseline: 'bare Express GET' },
  redaction: { run: benchRedaction, baseline: '' },
};

const asked = process.argv.slice(2).filter((a) => a !== '--');
const unknown = asked.filter((a) => !(a in scenarios));
if (unknown.length > 0) {
  console.error(
    `unknown scenario: ${unknown.join(', ')} (known: ${Object.keys(scenarios).join(', ')})`,
  );
  process.exit(2);
}
const names = asked.length > 0 ? asked : Object.keys(scenarios);
const m = machine();
console.log(`${String(m.cpus)} x ${m.model}, node ${m.node}, load average ${m.load.join(' ')}`);
let failed = 0;
try {
  for (const name of names) {
    const scenario = scenarios[name];
    if (scenario === undefined) continue;
    const started = Date.now();
    const result = await scenario.run();
    result.notes.push(
      `took ${String(Math.round((Date.now() - started) / 1000))} s; load average after: ${machine().load.join(' ')}`,
    );
    printTable(result, scenario.baseline);
    await writeResult(result);
    failed += result.checks.filter((c) => !c.pass).length;
  }
} finally {
  await stopFixtures();
}
console.log(`\n${String(failed)} target(s) not met`);
