// `pnpm test:logs`: scans what an integration run left under MEMFLEET_TEST_LOG_DIR for personal
// data the tests sent: the app processes' output (`*.log`, written by startAppProcess) and the
// stores' contents kept before teardown (`*.dump`, written by store-dump.ts). Exit 0 clean,
// 1 findings (file and line named, the value not printed) or no app process logs, 2 no directory
// given.
import { scanLogs } from './log-scan.ts';

const dir = process.env.MEMFLEET_TEST_LOG_DIR;
if (dir === undefined || dir === '') {
  console.error('MEMFLEET_TEST_LOG_DIR: required (the directory of app process logs to scan)');
  process.exit(2);
}
const { logs, dumps, findings } = await scanLogs(dir);
for (const f of findings) {
  const where = f.file.endsWith('.dump') ? 'a store dump line' : 'a log line';
  console.error(`${f.file}:${f.line}: ${f.types.join(', ')} in ${where}`);
}
console.log(
  `log scan: ${logs.files} log files (${logs.lines} lines), ${dumps.files} store dumps ` +
    `(${dumps.lines} keys, rows and items), ${findings.length} with an email, phone or card number`,
);
if (findings.length > 0 || logs.files === 0) {
  if (logs.files === 0) console.error(`no app process logs under ${dir}`);
  process.exitCode = 1;
}
