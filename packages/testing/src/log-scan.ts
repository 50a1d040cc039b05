import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { redact, type PiiType } from '@memfleet/redaction/redact';

/** One line of a log file that still holds personal data. */
export interface LogFinding {
  file: string;
  line: number;
  types: PiiType[];
}

/**
 * Every line of the `*.log` files under `dir` in which an email, phone or card number remains,
 * found with the same detectors the API and the loggers redact with (international phones, and
 * US national ones).
 */
export async function scanLogs(
  dir: string,
): Promise<{ files: number; lines: number; findings: LogFinding[] }> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.log')).sort();
  const findings: LogFinding[] = [];
  let lines = 0;
  for (const name of names) {
    const text = await readFile(join(dir, name), 'utf8');
    text.split('\n').forEach((line, i) => {
      if (line === '') return;
      lines += 1;
      const { counts } = redact(line);
      const types = (Object.keys(counts) as PiiType[]).filter((t) => counts[t] > 0);
      if (types.length > 0) findings.push({ file: name, line: i + 1, types });
    });
  }
  return { files: names.length, lines, findings };
}
