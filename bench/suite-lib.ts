// Shared parts of the `pnpm bench` suite: load generators, percentiles, the printed table, the
// JSON result and the SVG chart of each scenario.
import { mkdir, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { SERVICE_NODE_ARGS, startAppProcess, type AppProcess } from '@memfleet/testing/app-process';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const resultsDir = join(root, 'bench', 'results');

/** One measured variant of a scenario (the system, or its baseline). */
export interface Measure {
  name: string;
  /** Requests, messages or jobs per second; MB/s for redaction. */
  throughput: number;
  unit: string;
  latency_ms?: { p50: number; p95: number; p99: number; max: number };
  errors?: number;
  extra?: Record<string, unknown>;
}

/** An acceptance target checked on the measures of one run. */
export interface Check {
  target: string;
  measured: string;
  pass: boolean;
}

export interface ScenarioResult {
  scenario: string;
  measures: Measure[];
  checks: Check[];
  notes: string[];
  extra?: Record<string, unknown>;
}

export const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * The turns a variant took (see `bench-read.ts`, `bench-enqueue.ts`) as one measure: all its
 * requests over all its time; its latencies are those of its worse turn.
 */
export function combineTurns(name: string, runs: Measure[]): Measure {
  const requests = runs.reduce((n, r) => n + Number(r.extra?.requests ?? 0), 0);
  const seconds = runs.reduce((n, r) => n + Number(r.extra?.seconds ?? 0), 0);
  const worst = (p: 'p50' | 'p95' | 'p99' | 'max'): number =>
    Math.max(...runs.map((r) => r.latency_ms?.[p] ?? 0));
  return {
    name,
    throughput: round(requests / Math.max(1, seconds)),
    unit: 'req/s',
    latency_ms: { p50: worst('p50'), p95: worst('p95'), p99: worst('p99'), max: worst('max') },
    errors: runs.reduce((n, r) => n + (r.errors ?? 0), 0),
    extra: { requests, seconds, turns: runs.map((r) => r.throughput) },
  };
}

export function percentiles(values: number[]): {
  p50: number;
  p95: number;
  p99: number;
  max: number;
} {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number): number =>
    sorted.length === 0
      ? 0
      : (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0);
  return { p50: round(at(50)), p95: round(at(95)), p99: round(at(99)), max: round(at(100)) };
}

/** The machine the numbers came from, with the load average at the time. */
export function machine(): { cpus: number; model: string; load: number[]; node: string } {
  return {
    cpus: cpus().length,
    model: cpus()[0]?.model ?? 'unknown',
    load: loadavg().map((l) => round(l, 2)),
    node: process.version,
  };
}

/**
 * A bench server process (an app, or the bare Express echo) and the URL it listens on. Each runs
 * with the apps' Node options, baselines included.
 */
export async function startServer(
  entry: string,
  name: string,
  listening: RegExp,
  env: Record<string, string>,
): Promise<{ proc: AppProcess; url: string }> {
  const proc = startAppProcess(entry, { name, env, nodeArgs: SERVICE_NODE_ARGS });
  const line = await proc.waitForLine(listening, 30_000);
  return { proc, url: (JSON.parse(line) as { url: string }).url };
}

export interface ClosedLoop {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  /** Builds the body of request number `n` (unique per request). */
  body?: (n: number) => string;
  /** Builds the path of request number `n`. */
  path: (n: number) => string;
  connections: number;
  /** Runs this long, or until `amount` requests have been answered. */
  seconds?: number;
  amount?: number;
}

/** Closed-loop load with autocannon: `connections` connections, each one request at a time. */
export async function closedLoop(name: string, spec: ClosedLoop): Promise<Measure> {
  let n = 0;
  const result = await autocannon({
    url: spec.url,
    connections: spec.connections,
    ...(spec.amount === undefined ? { duration: spec.seconds ?? 10 } : { amount: spec.amount }),
    requests: [
      {
        method: spec.method,
        setupRequest: (req) => {
          n += 1;
          const body = spec.body?.(n);
          return {
            ...req,
            path: spec.path(n),
            headers: {
              ...spec.headers,
              ...(body === undefined ? {} : { 'content-type': 'application/json' }),
            },
            ...(body === undefined ? {} : { body }),
          };
        },
      },
    ],
  });
  const non2xx = result.non2xx + result.errors + result.timeouts;
  return {
    name,
    throughput: round(result.requests.average),
    unit: 'req/s',
    latency_ms: {
      p50: result.latency.p50,
      p95: round(percentileOfAutocannon(result.latency, 95)),
      p99: result.latency.p99,
      max: result.latency.max,
    },
    errors: non2xx,
    extra: {
      requests: result.requests.total,
      connections: spec.connections,
      seconds: spec.seconds,
    },
  };
}

/** autocannon reports p90 and p97.5 but no p95: the mean of those two brackets it. */
function percentileOfAutocannon(latency: autocannon.Histogram, p: 95): number {
  return p === 95 ? (latency.p90 + latency.p97_5) / 2 : latency.p99;
}

/**
 * Open-loop load: requests leave on schedule (`rate` per second) whether or not earlier ones have
 * answered, so a slow server shows in the latencies instead of slowing the load.
 */
export async function openLoop(
  url: string,
  path: (n: number) => string,
  headers: Record<string, string>,
  rate: number,
  seconds: number,
  post?: (n: number) => string,
  onOk?: (body: string) => void,
): Promise<{
  sent: number;
  ok: number;
  errors: number;
  ms: number[];
  achieved: number;
  statuses: Record<string, number>;
}> {
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  const ms: number[] = [];
  let ok = 0;
  let errors = 0;
  const statuses: Record<string, number> = {};
  const total = rate * seconds;
  const started = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const wait = started + (i * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(
      new Promise<void>((resolve) => {
        const t0 = performance.now();
        const body = post?.(i);
        const req = request(
          `${url}${path(i)}`,
          {
            agent,
            method: body === undefined ? 'GET' : 'POST',
            headers:
              body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
            timeout: 5000,
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              ms.push(performance.now() - t0);
              const status = res.statusCode ?? 0;
              statuses[String(status)] = (statuses[String(status)] ?? 0) + 1;
              if (status >= 200 && status < 300) {
                ok++;
                onOk?.(Buffer.concat(chunks).toString());
              } else errors++;
              resolve();
            });
          },
        );
        req.on('timeout', () => req.destroy(new Error('client timeout')));
        req.on('error', (err) => {
          errors++;
          statuses[err.message] = (statuses[err.message] ?? 0) + 1;
          ms.push(performance.now() - t0);
          resolve();
        });
        req.end(body);
      }),
    );
  }
  const sendSeconds = (performance.now() - started) / 1000;
  await Promise.all(pending);
  agent.destroy();
  return { sent: total, ok, errors, ms, achieved: round(total / sendSeconds), statuses };
}

/** Prints the scenario's table: each measure with its ratio to the baseline (the last measure). */
export function printTable(result: ScenarioResult, baseline?: string): void {
  const base = result.measures.find((m) => m.name === baseline);
  const rows = result.measures.map((m) => [
    m.name,
    `${String(m.throughput)} ${m.unit}`,
    base !== undefined && base.unit === m.unit
      ? `${(m.throughput / base.throughput).toFixed(2)}x`
      : '',
    m.latency_ms === undefined ? '' : String(m.latency_ms.p50),
    m.latency_ms === undefined ? '' : String(m.latency_ms.p95),
    m.latency_ms === undefined ? '' : String(m.latency_ms.p99),
    m.errors === undefined ? '' : String(m.errors),
  ]);
  const head = ['variant', 'throughput', 'ratio', 'p50 ms', 'p95 ms', 'p99 ms', 'errors'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join(' | ');
  console.log(`\n== ${result.scenario}`);
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const r of rows) console.log(line(r));
  for (const c of result.checks) {
    console.log(`${c.pass ? 'PASS' : 'FAIL'}  ${c.target}: ${c.measured}`);
  }
  for (const n of result.notes) console.log(`note: ${n}`);
}

/** Writes `bench/results/<scenario>.json` and `<scenario>.svg`. */
export async function writeResult(result: ScenarioResult): Promise<void> {
  await mkdir(resultsDir, { recursive: true });
  const json = join(resultsDir, `${result.scenario}.json`);
  const svg = join(resultsDir, `${result.scenario}.svg`);
  await writeFile(
    json,
    `${JSON.stringify({ ...result, at: new Date().toISOString(), machine: machine() }, null, 2)}\n`,
  );
  await writeFile(svg, chart(result));
  console.log(`wrote ${json} and ${svg}`);
}

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * The scenario's chart: throughput per variant (left) and latency p50/p95/p99 per variant (right),
 * as horizontal bars. Plain SVG text; no browser or canvas needed.
 */
export function chart(result: ScenarioResult): string {
  const rowH = 26;
  const labelW = 330;
  const barW = 260;
  const gap = 40;
  const top = 50;
  const measures = result.measures;
  const checksTop = top + measures.length * rowH * 3 + 16;
  const height = checksTop + result.checks.length * 16 + 10;
  const width = labelW + barW + gap + barW + 80;
  const maxThroughput = Math.max(...measures.map((m) => m.throughput), 1);
  const withLatency = measures.filter((m) => m.latency_ms !== undefined);
  const maxLatency = Math.max(...withLatency.map((m) => m.latency_ms?.p99 ?? 0), 1);
  const colors = { p50: '#9ecae1', p95: '#4292c6', p99: '#08519c' };
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${String(width)}" height="${String(height)}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">${esc(result.scenario)}</text>`,
    `<text x="${String(labelW)}" y="40" font-weight="bold">throughput</text>`,
    `<text x="${String(labelW + barW + gap)}" y="40" font-weight="bold">latency ms (p50, p95, p99)</text>`,
  ];
  measures.forEach((m, i) => {
    const y = top + i * rowH * 3;
    parts.push(`<text x="10" y="${String(y + 28)}">${esc(m.name)}</text>`);
    const w = (m.throughput / maxThroughput) * barW;
    parts.push(
      `<rect x="${String(labelW)}" y="${String(y + 14)}" width="${w.toFixed(1)}" height="20" fill="#31a354"/>`,
      `<text x="${(labelW + w + 4).toFixed(1)}" y="${String(y + 28)}">${esc(`${String(m.throughput)} ${m.unit}`)}</text>`,
    );
    const l = m.latency_ms;
    if (l === undefined) return;
    (['p50', 'p95', 'p99'] as const).forEach((p, j) => {
      const lw = (l[p] / maxLatency) * barW;
      const x = labelW + barW + gap;
      const ly = y + 6 + j * 22;
      parts.push(
        `<rect x="${String(x)}" y="${String(ly)}" width="${lw.toFixed(1)}" height="18" fill="${colors[p]}"/>`,
        `<text x="${(x + lw + 4).toFixed(1)}" y="${String(ly + 13)}">${p} ${String(l[p])}</text>`,
      );
    });
  });
  result.checks.forEach((c, i) => {
    parts.push(
      `<text x="10" y="${String(checksTop + i * 16)}" fill="${c.pass ? '#238b45' : '#cb181d'}">${esc(`${c.pass ? 'PASS' : 'FAIL'} ${c.target}: ${c.measured}`)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
