// `pnpm bench redaction`: precision and recall of @memfleet/redaction's `redact` per type on the
// labeled chat lines in bench/redaction-labeled.jsonl (personal data that must go, look-alikes that
// must stay), and its throughput in MB/s of UTF-8 chat text on one core (this process, no worker
// threads) over a corpus of realistic chat turns, most without personal data.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { redact, type PiiType } from '@memfleet/redaction/redact';
import { root, round, type Check, type Measure, type ScenarioResult } from './suite-lib.ts';

interface Labeled {
  text: string;
  pii: { type: PiiType; value: string }[];
  keep: string[];
}

const TYPES: PiiType[] = ['email', 'phone', 'card'];
const SECONDS = Number(process.env.BENCH_REDACTION_SECONDS ?? 5);

function loadLabeled(): Labeled[] {
  return readFileSync(join(root, 'bench', 'redaction-labeled.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Labeled);
}

/**
 * Per type: a labeled value counts as found when it is gone from the output; redactions of that
 * type beyond the values found are false positives. Look-alikes must survive word for word.
 */
function score(lines: Labeled[]) {
  const per = Object.fromEntries(TYPES.map((t) => [t, { tp: 0, fp: 0, fn: 0 }])) as Record<
    PiiType,
    { tp: number; fp: number; fn: number }
  >;
  let keptOk = 0;
  let keptTotal = 0;
  const lostLookAlikes: string[] = [];
  for (const line of lines) {
    const { text, counts } = redact(line.text);
    for (const t of TYPES) {
      const expected = line.pii.filter((p) => p.type === t);
      const found = Math.min(counts[t], expected.filter((p) => !text.includes(p.value)).length);
      per[t].tp += found;
      per[t].fn += expected.length - found;
      per[t].fp += counts[t] - found;
    }
    for (const k of line.keep) {
      keptTotal += 1;
      if (text.includes(k)) keptOk += 1;
      else lostLookAlikes.push(k);
    }
  }
  const rates = Object.fromEntries(
    TYPES.map((t) => {
      const { tp, fp, fn } = per[t];
      return [
        t,
        {
          ...per[t],
          precision: round(tp + fp === 0 ? 1 : tp / (tp + fp), 3),
          recall: round(tp + fn === 0 ? 1 : tp / (tp + fn), 3),
        },
      ];
    }),
  ) as Record<PiiType, { tp: number; fp: number; fn: number; precision: number; recall: number }>;
  return { rates, lookAlikesKept: { kept: keptOk, total: keptTotal, lost: lostLookAlikes } };
}

const PLAIN = [
  'Sounds good, see you tomorrow then!',
  'Can you summarise what we discussed about the kitchen renovation last week?',
  'I would prefer something quieter, away from the main road if possible.',
  'Thanks, that helps a lot. What about parking, is it included in the rent?',
  'The assistant suggested three options; the second one looked best for our budget.',
  'We are travelling with a dog, a small one, is that ok for the cabin?',
  'Remind me what time the yoga class starts on Thursdays.',
  'Honestly the last place was too far from the office, commute was over an hour.',
  'Could you rewrite the email so it sounds a bit more formal but still friendly?',
  'Great, and please keep my preferences: vegetarian, no nuts, window seat.',
  'The 2BR was nice but the kitchen was tiny; the price was $2,100 a month.',
  'Order #88123 arrived on 3/14 with one item missing, can you check?',
];

/** Realistic chat: mostly plain turns, some with numbers, one in five with personal data. */
function corpus(lines: Labeled[], bytes: number): string[] {
  const out: string[] = [];
  let size = 0;
  let pii = 0;
  for (let i = 0; size < bytes; i++) {
    const turn =
      i % 5 === 4
        ? (lines[pii++ % lines.length]?.text ?? '')
        : `${PLAIN[i % PLAIN.length] ?? ''} ${PLAIN[(i * 7 + 3) % PLAIN.length] ?? ''}`;
    out.push(turn);
    size += Buffer.byteLength(turn);
  }
  return out;
}

function throughput(turns: string[]): { mbPerS: number; mb: number; seconds: number } {
  const bytes = turns.reduce((a, t) => a + Buffer.byteLength(t), 0);
  // Warm-up pass, then as many passes as fit in SECONDS.
  for (const t of turns) redact(t);
  let passes = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < SECONDS * 1000) {
    for (const t of turns) redact(t);
    passes += 1;
  }
  const seconds = (performance.now() - t0) / 1000;
  const mb = (bytes * passes) / 1e6;
  return { mbPerS: round(mb / seconds, 2), mb: round(mb, 1), seconds: round(seconds, 2) };
}

export function benchRedaction(): Promise<ScenarioResult> {
  const lines = loadLabeled();
  const { rates, lookAlikesKept } = score(lines);
  const mixed = throughput(corpus(lines, 2_000_000));
  const dense = throughput(lines.map((l) => l.text));
  const measures: Measure[] = [
    {
      name: 'realistic chat mix (1 turn in 5 with PII)',
      throughput: mixed.mbPerS,
      unit: 'MB/s',
      extra: mixed,
    },
    {
      name: 'labeled lines only (PII-dense)',
      throughput: dense.mbPerS,
      unit: 'MB/s',
      extra: dense,
    },
  ];
  const checks: Check[] = [
    {
      target: 'redaction >= 20 MB/s on one core (realistic mix)',
      measured: `${String(mixed.mbPerS)} MB/s`,
      pass: mixed.mbPerS >= 20,
    },
    ...TYPES.map((t) => ({
      target: `${t}: precision and recall on ${String(lines.length)} labeled lines`,
      measured: `precision ${String(rates[t].precision)}, recall ${String(rates[t].recall)} (tp ${String(rates[t].tp)}, fp ${String(rates[t].fp)}, fn ${String(rates[t].fn)})`,
      pass: rates[t].precision === 1 && rates[t].recall === 1,
    })),
    {
      target: 'look-alikes kept (prices, dates, order numbers, room counts)',
      measured: `${String(lookAlikesKept.kept)}/${String(lookAlikesKept.total)}${lookAlikesKept.lost.length > 0 ? `; lost: ${lookAlikesKept.lost.join(', ')}` : ''}`,
      pass: lookAlikesKept.kept === lookAlikesKept.total,
    },
  ];
  return Promise.resolve({
    scenario: 'redaction',
    measures,
    checks,
    notes: [
      'one process, one thread; MB of UTF-8 input per second of redact() calls, one call per chat turn',
    ],
    extra: { precision_recall: rates, look_alikes: lookAlikesKept },
  });
}
