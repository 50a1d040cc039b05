// The read budget under load: 200 requests/s for 30 s to a reader whose backend hangs on every
// call, against a baseline run in the same process of the same load with memory reads switched off
// (the reader answers from its fallback without calling the backend). Writes
// bench/results/reader-budget.json. Loopback only; bounded in count and time; stops by itself.
//
//   pnpm bench:reader            (BENCH_RATE, BENCH_SECONDS, BENCH_THREADS override the load)
import { mkdir, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { createOutbox } from '@memfleet/outbox/outbox';
import { SERVICE_NODE_ARGS, startAppProcess, type AppProcess } from '@memfleet/testing/app-process';
import { startRedis } from '@memfleet/testing/redis-server';
import { startZepEmulator } from '@memfleet/testing/zep-emulator';

const RATE = Number(process.env.BENCH_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const THREADS = Number(process.env.BENCH_THREADS ?? 500);
const KEY = 'bench-key-0123456789abcdef';
const ZEP_KEY = 'bench-zep-key';
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

interface RunResult {
  scenario: string;
  requests: number;
  ok: number;
  errors: number;
  reasons: Record<string, number>;
  /** Client-measured time to the whole answer. */
  ms: Stats;
  /** The reader's own `took_ms`. */
  took_ms: Stats;
}

interface Stats {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

function stats(values: number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1) ?? 0),
    mean: round(sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length)),
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

/** Open loop: requests go out on schedule whether or not earlier ones have answered. */
async function load(scenario: string, url: string): Promise<RunResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const latencies: number[] = [];
  const took: number[] = [];
  const reasons: Record<string, number> = {};
  let ok = 0;
  let errors = 0;
  const total = RATE * SECONDS;
  const started = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const thread = `t${i % THREADS}`;
    pending.push(
      new Promise<void>((resolve) => {
        const t0 = performance.now();
        const req = request(
          `${url}/v1/threads/${thread}/context?user_id=u-${thread}`,
          { agent, headers: { authorization: `Bearer ${KEY}` }, timeout: 5000 },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              latencies.push(performance.now() - t0);
              if (res.statusCode === 200) {
                ok++;
                const body = JSON.parse(Buffer.concat(chunks).toString()) as {
                  reason?: string;
                  took_ms: number;
                };
                took.push(body.took_ms);
                const reason = body.reason ?? 'used';
                reasons[reason] = (reasons[reason] ?? 0) + 1;
              } else {
                errors++;
              }
              resolve();
            });
          },
        );
        req.on('timeout', () => req.destroy(new Error('client timeout')));
        req.on('error', () => {
          errors++;
          latencies.push(performance.now() - t0);
          resolve();
        });
        req.end();
      }),
    );
  }
  await Promise.all(pending);
  agent.destroy();
  return {
    scenario,
    requests: total,
    ok,
    errors,
    reasons,
    ms: stats(latencies),
    took_ms: stats(took),
  };
}

async function startReaderProcess(
  env: Record<string, string>,
): Promise<{ proc: AppProcess; url: string }> {
  const proc = startAppProcess('apps/reader/src/main.ts', {
    name: 'reader',
    env,
    nodeArgs: SERVICE_NODE_ARGS,
  });
  const line = await proc.waitForLine(/"message":"reader listening"/, 30_000);
  return { proc, url: (JSON.parse(line) as { url: string }).url };
}

const redisServer = await startRedis();
const emu = await startZepEmulator({ apiKeys: [ZEP_KEY] });
const redis = new Redis(redisServer.url);
const results: RunResult[] = [];
try {
  /** The threads as the API records them: owner and last messages. */
  async function seed(prefix: string): Promise<void> {
    const outbox = createOutbox(redis, { prefix, recentMessages: 4 });
    for (let t = 0; t < THREADS; t++) {
      await outbox.append(
        'bench',
        `t${t}`,
        `u-t${t}`,
        Array.from({ length: 6 }, (_, n) => ({
          clientMessageId: `t${t}-m${n}`,
          body: JSON.stringify({
            role: 'user',
            content: `message ${n}`,
            created_at: '',
            metadata: {},
          }),
        })),
        Date.now(),
      );
    }
  }

  // Every backend call hangs far beyond the budget.
  emu.inject({ kind: 'delay', ms: 60_000, times: Infinity, match: { method: 'GET' } });
  const env = {
    REDIS_URL: redisServer.url,
    DATABASE_URL: 'postgres://nobody@127.0.0.1:9/none',
    MEMFLEET_API_KEYS: `bench:${KEY}`,
    MEMFLEET_ADMIN_KEY: 'bench-admin-key-0123456789',
    MEMORY_BACKEND: 'zep',
    ZEP_API_URL: emu.url,
    ZEP_API_KEY: ZEP_KEY,
    READER_PORT: '0',
    LOG_LEVEL: 'info',
  };
  for (const [scenario, extra] of [
    ['baseline: reads off, fallback only', { MEMORY_MODE: 'write_only' }],
    ['backend hanging on every call, read breaker on (default)', {}],
    ['backend hanging on every call, read breaker off', { READ_BREAKER_FAILURES: '10000' }],
  ] as const) {
    // Each scenario starts clean: its own key prefix, so no breaker state carries over.
    const prefix = `{bench-${results.length}}`;
    await seed(prefix);
    const { proc, url } = await startReaderProcess({ ...env, ...extra, REDIS_KEY_PREFIX: prefix });
    try {
      const result = await load(scenario, url);
      results.push(result);
      console.log(JSON.stringify(result));
    } finally {
      await proc.stop(15_000);
    }
  }
} finally {
  await redis.quit();
  await emu.close();
  await redisServer.stop();
}

const out = join(root, 'bench', 'results', 'reader-budget.json');
await mkdir(dirname(out), { recursive: true });
await writeFile(
  out,
  `${JSON.stringify(
    {
      bench: 'reader-budget',
      at: new Date().toISOString(),
      budget_ms: 250,
      rate_per_s: RATE,
      seconds: SECONDS,
      threads: THREADS,
      results,
    },
    null,
    2,
  )}\n`,
);
console.log(`wrote ${out}`);
