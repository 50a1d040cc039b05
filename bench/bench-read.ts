// `pnpm bench read`: the reader answering from its per-turn cache against a bare Express GET, both
// real Node processes under the same autocannon load (50 connections) in the same run; then the
// reader with its backend hanging on every call (a process that never answers) at a steady 500
// requests/s (open loop), with the read breaker as configured by default and with it held shut,
// p99 against the 250 ms budget.
import { httpRequestJson } from '@memfleet/testing/http-request';
import { waitFor } from '@memfleet/testing/wait-for';
import { startZepEmulator } from '@memfleet/testing/zep-emulator';
import { Fleet, KEY } from '@memfleet/worker/fleet-harness';
import { ZEP_KEY } from '@memfleet/worker/zep-fleet-env';
import {
  closedLoop,
  openLoop,
  percentiles,
  startServer,
  type Measure,
  type ScenarioResult,
} from './suite-lib.ts';

const THREADS = 200;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const RATE = 500;
const headers = { authorization: `Bearer ${KEY}` };
const contextPath = (n: number): string =>
  `/v1/threads/t-${String(n % THREADS)}/context?user_id=u-${String(n % THREADS)}`;

async function get(url: string): Promise<{ source?: string; reason?: string }> {
  const res = await httpRequestJson(url, { headers });
  return res.json as { source?: string; reason?: string };
}

/** THREADS threads with three messages each, owned by their user; 20 requests at a time. */
async function seed(apiUrl: string): Promise<void> {
  for (let t0 = 0; t0 < THREADS; t0 += 20) {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => t0 + i).map(async (t) => {
        for (let m = 0; m < 3; m++) {
          await httpRequestJson(`${apiUrl}/v1/threads/t-${String(t)}/messages`, {
            method: 'POST',
            headers,
            body: {
              user_id: `u-${String(t)}`,
              messages: [
                {
                  client_message_id: `t${String(t)}-m${String(m)}`,
                  role: 'user',
                  content: `I like hiking, note ${String(m)}`,
                },
              ],
            },
          });
        }
      }),
    );
  }
}

const fleetEnv = (zepUrl: string): Record<string, string> => ({
  RATE_LIMIT_ENQUEUE_PER_S: '0',
  RATE_LIMIT_READ_PER_S: '0',
  MEMORY_BACKEND: 'zep',
  ZEP_API_URL: zepUrl,
  ZEP_API_KEY: ZEP_KEY,
});

/**
 * A fresh fleet (its own key prefix, so no breaker state carries over) whose reader, cache off,
 * takes RATE requests/s for SECONDS while every backend read hangs.
 */
async function hangingRun(name: string, env: Record<string, string>): Promise<Measure> {
  const backend = await startServer(
    'bench/hanging-backend.ts',
    'hanging-backend',
    /"message":"hanging backend listening"/,
    {},
  );
  const fleet = new Fleet();
  try {
    await fleet.start(fleetEnv(backend.url), 0);
    await seed(fleet.apiUrl);
    await fleet.addReader({ READ_CACHE_TTL_MS: '0', ...env });
    const reasons: Record<string, number> = {};
    const run = await openLoop(
      fleet.readerUrl,
      contextPath,
      headers,
      RATE,
      SECONDS,
      undefined,
      (body) => {
        const reason = (JSON.parse(body) as { reason?: string }).reason ?? 'used';
        reasons[reason] = (reasons[reason] ?? 0) + 1;
      },
    );
    return {
      name,
      throughput: run.achieved,
      unit: 'req/s sent',
      latency_ms: percentiles(run.ms),
      errors: run.errors,
      extra: { statuses: run.statuses, reasons },
    };
  } finally {
    await fleet.stop();
    await backend.proc.stop(15_000);
  }
}

export async function benchRead(): Promise<ScenarioResult> {
  const emu = await startZepEmulator({ apiKeys: [ZEP_KEY] });
  const echo = await startServer('bench/echo-server.ts', 'echo', /"message":"echo listening"/, {});
  const fleet = new Fleet();
  let fleetStopped = false;
  try {
    await fleet.start({ ...fleetEnv(emu.url), READ_CACHE_TTL_MS: '600000' }, 1);
    // Each thread has messages in the backend; one read per thread fills the cache.
    await seed(fleet.apiUrl);
    await waitFor(
      'seed written',
      async () => (await fleet.ledgerCount('written')) >= THREADS * 3,
      60_000,
      100,
    );
    await fleet.addReader();
    for (let t = 0; t < THREADS; t++) await get(`${fleet.readerUrl}${contextPath(t)}`);
    const sources = new Set<string>();
    for (let t = 0; t < THREADS; t += 20)
      sources.add((await get(`${fleet.readerUrl}${contextPath(t)}`)).source ?? '');

    const load = { method: 'GET' as const, path: contextPath, headers, connections: 50 };
    await closedLoop('warm-up', { ...load, url: echo.url, seconds: 2 });
    await closedLoop('warm-up', { ...load, url: fleet.readerUrl, seconds: 2 });
    const echoRun = await closedLoop('bare Express GET', {
      ...load,
      url: echo.url,
      seconds: SECONDS,
    });
    const cacheRun = await closedLoop('reader, cache hits', {
      ...load,
      url: fleet.readerUrl,
      seconds: SECONDS,
    });
    cacheRun.extra = { ...cacheRun.extra, sources_sampled: [...sources] };

    await fleet.stop();
    fleetStopped = true;

    // Every backend call now hangs: a backend process that never answers.
    const hanging = [
      await hangingRun('reader, backend hanging, read breaker default', {}),
      await hangingRun('reader, backend hanging, read breaker held shut', {
        READ_BREAKER_FAILURES: '10000',
      }),
    ];
    const ratio = cacheRun.throughput / echoRun.throughput;
    return {
      scenario: 'read',
      measures: [cacheRun, echoRun, ...hanging],
      checks: [
        {
          target: 'reader cache hits req/s >= 0.7x bare Express',
          measured: `${ratio.toFixed(2)}x (sources sampled: ${[...sources].join(', ')})`,
          pass:
            ratio >= 0.7 &&
            (cacheRun.errors ?? 0) === 0 &&
            sources.size === 1 &&
            sources.has('cache'),
        },
        ...hanging.map((h) => ({
          target: `${h.name}: p99 <= 250 ms at ${String(RATE)} req/s`,
          measured: `${String(h.latency_ms?.p99)} ms (achieved ${String(h.throughput)} req/s, ${String(h.errors)} errors)`,
          pass:
            (h.latency_ms?.p99 ?? Infinity) <= 250 && h.throughput >= RATE * 0.95 && h.errors === 0,
        })),
      ],
      notes: [
        `cache hits: ${String(THREADS)} threads, each read once to fill the cache; 50 connections, ${String(SECONDS)} s each after a 2 s warm-up`,
        `backend hanging: open loop at ${String(RATE)} req/s for ${String(SECONDS)} s, cache off, READ_BUDGET_MS 250`,
      ],
    };
  } finally {
    if (!fleetStopped) await fleet.stop();
    await echo.proc.stop(15_000);
    await emu.close();
  }
}
