// `pnpm bench read`: the reader answering from its per-turn cache, with 1 and with 2 processes
// (READER_PROCESSES), against a bare Express GET, all real Node processes under the same autocannon
// load (50 connections), taking turns in the same run; then the
// reader with its backend hanging on every call (a process that never answers) at a steady 500
// requests/s (open loop), with the read breaker as configured by default and with it held shut,
// p99 against the 250 ms budget.
import type { AppProcess } from '@memfleet/testing/app-process';
import { httpRequestJson } from '@memfleet/testing/http-request';
import { waitFor } from '@memfleet/testing/wait-for';
import { startZepEmulator } from '@memfleet/testing/zep-emulator';
import { Fleet, KEY } from '@memfleet/worker/fleet-harness';
import { ZEP_KEY } from '@memfleet/worker/zep-fleet-env';
import {
  closedLoop,
  combineTurns,
  openLoop,
  percentiles,
  startServer,
  type Measure,
  type ScenarioResult,
} from './suite-lib.ts';

const THREADS = 200;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const RATE = 500;
/** Reader processes (`READER_PROCESSES`) of the cache-hit runs. */
const READER_PROCESSES = [1, 2];
/** Seconds of load before each hanging-backend run. */
const WARM_UP_SECONDS = 2;
/** Turns each cache-hit variant takes, SECONDS / TURNS each. */
const TURNS = 2;
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
    // The same load for a while first, so that the measured run finds a warm process; then, once
    // the warm-up's backend calls have ended, the read breaker's state is cleared so that it
    // starts closed, as on a fresh fleet.
    await openLoop(fleet.readerUrl, contextPath, headers, RATE, WARM_UP_SECONDS);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await fleet.redis.del(`${fleet.prefix}:gate:zep:read`, `${fleet.prefix}:gate:zep:read:probe`);
    const reasons: Record<string, number> = {};
    const tookMs: number[] = [];
    const run = await openLoop(
      fleet.readerUrl,
      contextPath,
      headers,
      RATE,
      SECONDS,
      undefined,
      (body) => {
        const answer = JSON.parse(body) as { reason?: string; took_ms: number };
        const reason = answer.reason ?? 'used';
        reasons[reason] = (reasons[reason] ?? 0) + 1;
        tookMs.push(answer.took_ms);
      },
    );
    return {
      name,
      throughput: run.achieved,
      unit: 'req/s sent',
      latency_ms: percentiles(run.ms),
      errors: run.errors,
      // The reader's own took_ms, from the request's arrival in its app to the answer.
      extra: { statuses: run.statuses, reasons, reader_took_ms: percentiles(tookMs) },
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
    // One reader per process count, each on its own port; the cache (in Redis) is shared, so the
    // first one's reads fill it for both.
    const readers: { processes: number; proc: AppProcess; url: string }[] = [];
    for (const processes of READER_PROCESSES) {
      const proc = await fleet.addReader({ READER_PROCESSES: String(processes) });
      readers.push({ processes, proc, url: fleet.readerUrl });
    }
    const first = readers[0]?.url ?? '';
    for (let t = 0; t < THREADS; t++) await get(`${first}${contextPath(t)}`);
    const sources = new Set<string>();
    for (const { url } of readers) {
      for (let t = 0; t < THREADS; t += 20)
        sources.add((await get(`${url}${contextPath(t)}`)).source ?? '');
    }

    const load = { method: 'GET' as const, path: contextPath, headers, connections: 50 };
    const variants = [
      ...readers.map(({ processes, url }) => ({
        name: `reader, cache hits, ${String(processes)} process${processes > 1 ? 'es' : ''}`,
        url,
      })),
      { name: 'bare Express GET', url: echo.url },
    ];
    for (const v of variants) await closedLoop('warm-up', { ...load, url: v.url, seconds: 2 });
    // The variants take turns, TURNS times, so a change in the machine's load during the run
    // falls on all of them alike.
    const turns = new Map<string, Measure[]>(variants.map((v) => [v.name, []]));
    for (let turn = 0; turn < TURNS; turn++) {
      for (const v of variants) {
        const run = await closedLoop(v.name, { ...load, url: v.url, seconds: SECONDS / TURNS });
        turns.get(v.name)?.push(run);
      }
    }
    const measured = variants.map((v) => combineTurns(v.name, turns.get(v.name) ?? []));
    const echoRun = measured.at(-1);
    if (echoRun === undefined) throw new Error('no baseline measured');
    const cacheRuns = measured.slice(0, -1);
    for (const run of cacheRuns) run.extra = { ...run.extra, sources_sampled: [...sources] };
    for (const { proc } of readers) await proc.stop(15_000);

    await fleet.stop();
    fleetStopped = true;

    // Every backend call now hangs: a backend process that never answers.
    const hanging = [
      await hangingRun('reader, backend hanging, read breaker default', {}),
      await hangingRun('reader, backend hanging, read breaker held shut', {
        READ_BREAKER_FAILURES: '10000',
      }),
    ];
    // The target is checked on one reader process (the default, and the baseline's process
    // model); the other variant is shown beside it.
    const ratios = cacheRuns.map(
      (run) =>
        `${run.name.replace('reader, cache hits, ', '')}: ${(run.throughput / echoRun.throughput).toFixed(2)}x`,
    );
    const target = cacheRuns[0];
    const targetRatio = (target?.throughput ?? 0) / echoRun.throughput;
    const cacheCheck = {
      target: `${target?.name ?? 'reader, cache hits'}: req/s >= 0.7x bare Express`,
      measured: `${targetRatio.toFixed(2)}x (${ratios.join(', ')}; sources sampled: ${[...sources].join(', ')})`,
      pass:
        targetRatio >= 0.7 &&
        (target?.errors ?? 1) === 0 &&
        sources.size === 1 &&
        sources.has('cache'),
    };
    return {
      scenario: 'read',
      measures: [...cacheRuns, echoRun, ...hanging],
      checks: [
        cacheCheck,
        ...hanging.map((h) => ({
          target: `${h.name}: p99 <= 250 ms at ${String(RATE)} req/s`,
          measured: `${String(h.latency_ms?.p99)} ms (achieved ${String(h.throughput)} req/s, ${String(h.errors)} errors)`,
          pass:
            (h.latency_ms?.p99 ?? Infinity) <= 250 && h.throughput >= RATE * 0.95 && h.errors === 0,
        })),
      ],
      notes: [
        `cache hits: ${String(THREADS)} threads, each read once to fill the cache; 50 connections, ${String(SECONDS)} s each after a 2 s warm-up, in ${String(TURNS)} turns taken in order (readers, then the baseline); latencies are the worse turn's`,
        `backend hanging: open loop at ${String(RATE)} req/s for ${String(SECONDS)} s after ${String(WARM_UP_SECONDS)} s of the same load (then the read breaker's state is cleared), cache off, READ_BUDGET_MS 250, one reader process`,
      ],
    };
  } finally {
    if (!fleetStopped) await fleet.stop();
    await echo.proc.stop(15_000);
    await emu.close();
  }
}
