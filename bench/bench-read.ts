// `pnpm bench read`: the reader answering from its per-turn cache against a bare Express GET, both
// real Node processes under the same autocannon load (50 connections) in the same run; then the
// reader with the backend (Zep emulator) hanging on every read, at a steady 500 requests/s (open
// loop), with the read breaker as configured by default and with it held shut, p99 against the
// 250 ms budget.
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

export async function benchRead(): Promise<ScenarioResult> {
  const emu = await startZepEmulator({ apiKeys: [ZEP_KEY] });
  const echo = await startServer('bench/echo-server.ts', 'echo', /"message":"echo listening"/, {});
  const fleet = new Fleet();
  try {
    await fleet.start(
      {
        RATE_LIMIT_ENQUEUE_PER_S: '0',
        RATE_LIMIT_READ_PER_S: '0',

        MEMORY_BACKEND: 'zep',
        ZEP_API_URL: emu.url,
        ZEP_API_KEY: ZEP_KEY,
        READ_CACHE_TTL_MS: '600000',
      },
      1,
    );
    // Each thread has messages in the backend; one read per thread fills the cache.
    for (let t = 0; t < THREADS; t++) {
      for (let m = 0; m < 3; m++) {
        await httpRequestJson(`${fleet.apiUrl}/v1/threads/t-${String(t)}/messages`, {
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
    }
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

    // Every backend read now hangs far beyond the budget; readers without a cache go to it.
    emu.inject({ kind: 'delay', ms: 60_000, times: Infinity, match: { method: 'GET' } });
    const hanging: Measure[] = [];
    for (const [name, env] of [
      ['reader, backend hanging, read breaker default', {}],
      ['reader, backend hanging, read breaker held shut', { READ_BREAKER_FAILURES: '1000000' }],
    ] as const) {
      await fleet.reader?.stop(15_000);
      await fleet.addReader({ READ_CACHE_TTL_MS: '0', ...env });
      const run = await openLoop(fleet.readerUrl, contextPath, headers, RATE, SECONDS);
      hanging.push({
        name,
        throughput: run.achieved,
        unit: 'req/s sent',
        latency_ms: percentiles(run.ms),
        errors: run.errors,
      });
    }
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
    await fleet.stop();
    await echo.proc.stop(15_000);
    await emu.close();
  }
}
