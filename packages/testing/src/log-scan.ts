import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { redact, type PiiType } from '@memfleet/redaction/redact';

/** One line of a log or store dump that still holds personal data. */
export interface LogFinding {
  file: string;
  line: number;
  types: PiiType[];
}

/**
 * Machine values of the stores that the card detector would read as card numbers: millisecond
 * timestamps (13 digits, starting with 1, not part of a longer digit group; BullMQ's and the
 * outbox's times), UUIDs (hex groups joined by `-` can make a Luhn-valid digit run) and hex digests
 * of 32 or more characters (dedupe ids). Masked in store dumps before scanning; no card number has
 * these forms.
 */
const MACHINE_VALUES =
  /(?<![\d\s-])1\d{12}(?![\d\s-])|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|\b[0-9a-f]{32,}\b/gi;

/** Files and non-empty lines scanned, of one kind. */
export interface ScanCount {
  files: number;
  lines: number;
}

/**
 * Every line of the `*.log` files (app process output) and `*.dump` files (what the tests' stores
 * held before teardown deleted it: Redis keys, Postgres rows, emulator stores; see store-dump.ts)
 * under `dir` in which an email, phone or card number remains, found with the same detectors the
 * API and the loggers redact with (international phones, and US national ones).
 */
export async function scanLogs(
  dir: string,
): Promise<{ logs: ScanCount; dumps: ScanCount; findings: LogFinding[] }> {
  const names = (await readdir(dir))
    .filter((n) => n.endsWith('.log') || n.endsWith('.dump'))
    .sort();
  const findings: LogFinding[] = [];
  const logs: ScanCount = { files: 0, lines: 0 };
  const dumps: ScanCount = { files: 0, lines: 0 };
  for (const name of names) {
    const isLog = name.endsWith('.log');
    const count = isLog ? logs : dumps;
    count.files += 1;
    const text = await readFile(join(dir, name), 'utf8');
    text.split('\n').forEach((line, i) => {
      if (line === '') return;
      count.lines += 1;
      const { counts } = redact(isLog ? line : line.replace(MACHINE_VALUES, '<id>'));
      const types = (Object.keys(counts) as PiiType[]).filter((t) => counts[t] > 0);
      if (types.length > 0) findings.push({ file: name, line: i + 1, types });
    });
  }
  return { logs, dumps, findings };
}
