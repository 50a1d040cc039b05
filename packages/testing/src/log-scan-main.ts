// `pnpm test:logs`: scans the app processes' output of an integration run (the files
// startAppProcess writes under MEMFLEET_TEST_LOG_DIR) for personal data the tests sent. Exit 0
// clean, 1 findings (file and line named, the value not printed), 2 no directory given.
import { scanLogs } from './log-scan.ts';

const dir = process.env.MEMFLEET_TEST_LOG_DIR;
if (dir === undefined || dir === '') {
  console.error('MEMFLEET_TEST_LOG_DIR: required (the directory of app process logs to scan)');
  process.exit(2);
}
const { files, lines, findings } = await scanLogs(dir);
for (const f of findings) console.error(`${f.file}:${f.line}: ${f.types.join(', ')} in a log line`);
console.log(
  `log scan: ${files} files, ${lines} lines, ${findings.length} with an email, phone or card number`,
);
if (findings.length > 0 || files === 0) {
  if (files === 0) console.error(`no app process logs under ${dir}`);
  process.exitCode = 1;
}
