// Per-tenant rate limits under a flood: one API process with an enqueue limit of LIMIT requests/s
// per tenant. First tenant B alone sends at B_RATE (below its limit) for SECONDS: the baseline.
// Then tenant A floods at 10 × LIMIT while B sends as before. Reports per tenant and phase: sent,
// 202, 429, other, and latency percentiles; and B's latency beside its baseline. Writes
// bench/results/tenant-flood.json. Loopback only; bounded in count and time; stops by itself.
//
//   pnpm bench:flood         (BENCH_LIMIT, BENCH_B_RATE, BENCH_SECONDS override the load)
import { mkdir, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVICE_NODE_ARGS, startAppProcess } from '@memfleet/testing/app-process';
import { startRedis } from '@memfleet/testing/redis-server';

const LIMIT = Number(process.env.BENCH_LIMIT ?? 20);
const B_RATE = Number(process.env.BENCH_B_RATE ?? 10);
const SECONDS = Math.min(60, Number(process.env.BENCH_SECONDS ?? 10));
const A_RATE = LIMIT * 10;
const KEYS = { a: 'flood-a-key-0123456789abcdef', b: 'flood-b-key-0123456789abcdef' } as const;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

interface Stats {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

interface TenantResult {
  tenant: string;
  phase: string;
  rate_per_s: number;
  sent: number;
  accepted_202: number;
  limited_429: number;
  other: number;
  /** 429s that carried a Retry-After header. */
  retry_after: number;
  ms: Stats;
}

function stats(values: number[]): Stats {
  const sorted = [...values].sort((x, y) => x - y);
  const at = (p: number) =>
    sorted.length === 0
      ? 0
      : (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0);
  const round = (n: number) => Math.round(n * 100) / 100;
  return { p50: round(at(50)), p95: round(at(95)), p99: round(at(99)), max: round(at(100)) };
}

/** Open loop: requests go out on schedule whether or not earlier ones have answered. */
async function send(
  url: string,
  tenant: 'a' | 'b',
  phase: string,
  rate: number,
): Promise<TenantResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 128 });
  const latencies: number[] = [];
  const result: TenantResult = {
    tenant,
    phase,
    rate_per_s: rate,
    sent: 0,
    accepted_202: 0,
    limited_429: 0,
    other: 0,
    retry_after: 0,
    ms: stats([]),
  };
  const total = Math.round(rate * SECONDS);
  const started = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const wait = started + (i * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const body = JSON.stringify({
      user_id: `u-${tenant}`,
      messages: [{ client_message_id: `${phase}-${tenant}-${i}`, role: 'user', content: 'hello' }],
    });
    result.sent++;
    pending.push(
      new Promise<void>((resolve) => {
        const t0 = performance.now();
        const req = request(
          `${url}/v1/threads/${phase}-${tenant}-${i % 50}/messages`,
          {
            agent,
            method: 'POST',
            timeout: 5000,
            headers: {
              authorization: `Bearer ${KEYS[tenant]}`,
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(body),
            },
          },
          (res) => {
            res.resume();
            res.on('end', () => {
              latencies.push(performance.now() - t0);
              if (res.statusCode === 202) result.accepted_202++;
              else if (res.statusCode === 429) {
                result.limited_429++;
                if (res.headers['retry-after'] !== undefined) result.retry_after++;
              } else result.other++;
              resolve();
            });
          },
        );
        req.on('timeout', () => req.destroy(new Error('client timeout')));
        req.on('error', () => {
          result.other++;
          latencies.push(performance.now() - t0);
          resolve();
        });
        req.end(body);
      }),
    );
  }
  await Promise.all(pending);
  agent.destroy();
  result.ms = stats(latencies);
  return result;
}

const redisServer = await startRedis();
const api = startAppProcess('apps/api/src/main.ts', {
  name: 'api',
  nodeArgs: SERVICE_NODE_ARGS,
  env: {
    REDIS_URL: redisServer.url,
    REDIS_KEY_PREFIX: '{bench-flood}',
    // Enqueue touches only Redis; the ledger's pool connects on first use, which never comes.
    DATABASE_URL: 'postgres://nobody@127.0.0.1:9/none',
    MEMFLEET_API_KEYS: `tenant-a:${KEYS.a},tenant-b:${KEYS.b}`,
    MEMFLEET_ADMIN_KEY: 'flood-admin-key-0123456789',
    RATE_LIMIT_ENQUEUE_PER_S: String(LIMIT),
    RATE_LIMIT_ENQUEUE_BURST: '0',
    API_PORT: '0',
    LOG_LEVEL: 'info',
  },
});
const results: TenantResult[] = [];
try {
  const line = await api.waitForLine(/"message":"api listening"/, 30_000);
  const { url } = JSON.parse(line) as { url: string };
  // A short warm-up so the first phase does not pay for connections and JIT alone.
  await send(url, 'b', 'warmup', Math.min(B_RATE, 5));
  results.push(await send(url, 'b', 'baseline', B_RATE));
  results.push(
    ...(await Promise.all([send(url, 'a', 'flood', A_RATE), send(url, 'b', 'flood', B_RATE)])),
  );
} finally {
  await api.stop(15_000);
  await redisServer.stop();
}

const baseline = results.find((r) => r.tenant === 'b' && r.phase === 'baseline');
const underFlood = results.find((r) => r.tenant === 'b' && r.phase === 'flood');
const comparison =
  baseline && underFlood
    ? {
        b_p50_ms: { baseline: baseline.ms.p50, flood: underFlood.ms.p50 },
        b_p95_ms: { baseline: baseline.ms.p95, flood: underFlood.ms.p95 },
        b_p99_ms: { baseline: baseline.ms.p99, flood: underFlood.ms.p99 },
        b_429s_under_flood: underFlood.limited_429,
      }
    : undefined;

console.table(
  results.map((r) => ({
    tenant: r.tenant,
    phase: r.phase,
    'req/s': r.rate_per_s,
    sent: r.sent,
    'got 202': r.accepted_202,
    'got 429': r.limited_429,
    other: r.other,
    'p50 ms': r.ms.p50,
    'p95 ms': r.ms.p95,
    'p99 ms': r.ms.p99,
  })),
);
console.log(JSON.stringify(comparison));

const out = join(root, 'bench', 'results', 'tenant-flood.json');
await mkdir(dirname(out), { recursive: true });
await writeFile(
  out,
  `${JSON.stringify(
    {
      at: new Date().toISOString(),
      settings: {
        limit_per_s: LIMIT,
        burst: 0,
        a_rate_per_s: A_RATE,
        b_rate_per_s: B_RATE,
        seconds: SECONDS,
      },
      results,
      comparison,
    },
    null,
    2,
  )}\n`,
);
console.log(`wrote ${out}`);
