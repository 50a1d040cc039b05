// `pnpm bench enqueue`: the API's POST /v1/threads/{id}/messages (key check, validation, redaction,
// dedupe, outbox append and drain job; one message per request, each with its own
// client_message_id) against a bare Express JSON echo, both real Node processes started the same
// way, under the same autocannon load (50 connections) in the same run: the API as one process (the
// default, and the echo's process model: the targets are checked on this run) and as a cluster of
// two (API_PROCESSES=2, one per core). No workers run, so the numbers are the API's alone; the
// per-tenant rate limit is off.
import { Fleet, KEY } from '@memfleet/worker/fleet-harness';
import { waitFor } from '@memfleet/testing/wait-for';
import { closedLoop, startServer, type Measure, type ScenarioResult } from './suite-lib.ts';

const CONNECTIONS = 50;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const THREADS = 1000;

const body = (n: number): string =>
  JSON.stringify({
    user_id: `u-${String(n % THREADS)}`,
    messages: [
      {
        client_message_id: `m-${String(n)}`,
        role: 'user',
        content:
          'Hi, I booked the 2BR for June 3 at $180/night, order #48213. Please email me at ' +
          `guest${String(n)}@example.com or call (415) 555-2671 if anything changes.`,
      },
    ],
  });
const path = (n: number): string => `/v1/threads/t-${String(n % THREADS)}/messages`;
const headers = { authorization: `Bearer ${KEY}` };

/** One API fleet (no workers) with `processes` API processes, measured after a warm-up. */
async function apiRun(processes: number): Promise<Measure> {
  const fleet = new Fleet();
  try {
    await fleet.start(
      {
        RATE_LIMIT_ENQUEUE_PER_S: '0',
        RATE_LIMIT_READ_PER_S: '0',
        API_PROCESSES: String(processes),
      },
      0,
    );
    await waitFor(`${String(processes)} API processes listening`, () =>
      Promise.resolve(
        fleet.api.lines().filter((l) => l.includes('"message":"api listening"')).length >=
          processes,
      ),
    );
    const load = { method: 'POST' as const, body, path, connections: CONNECTIONS, headers };
    // Warm-up ids are distinct from the measured ones, so the measured requests are all new.
    await closedLoop('warm-up', {
      ...load,
      body: (n) => body(n + 10_000_000),
      url: fleet.apiUrl,
      seconds: 2,
    });
    return await closedLoop(
      `API enqueue, ${processes === 1 ? '1 process' : `API_PROCESSES=${String(processes)}`}`,
      { ...load, url: fleet.apiUrl, seconds: SECONDS },
    );
  } finally {
    await fleet.stop();
  }
}

export async function benchEnqueue(): Promise<ScenarioResult> {
  const echo = await startServer('bench/echo-server.ts', 'echo', /"message":"echo listening"/, {});
  let echoRun: Measure;
  try {
    const load = { method: 'POST' as const, body, path, connections: CONNECTIONS, headers };
    await closedLoop('warm-up', { ...load, url: echo.url, seconds: 2 });
    echoRun = await closedLoop('bare Express JSON echo', {
      ...load,
      url: echo.url,
      seconds: SECONDS,
    });
  } finally {
    await echo.proc.stop(15_000);
  }
  const single = await apiRun(1);
  const clustered = await apiRun(2);
  const ratio = single.throughput / echoRun.throughput;
  const p99 = single.latency_ms?.p99 ?? Infinity;
  return {
    scenario: 'enqueue',
    measures: [single, clustered, echoRun],
    checks: [
      {
        target: 'API req/s (1 process, as the echo) >= 0.8x bare Express echo',
        measured: `${ratio.toFixed(2)}x`,
        pass: ratio >= 0.8 && (single.errors ?? 0) === 0,
      },
      {
        target: 'API p99 <= 25 ms at 50 connections (1 process)',
        measured: `${String(p99)} ms`,
        pass: p99 <= 25,
      },
    ],
    notes: [
      `${String(CONNECTIONS)} connections, ${String(SECONDS)} s each after a 2 s warm-up; the echo (one process) and the API are separate Node processes (tsx) on the same machine as the load, one after the other`,
    ],
  };
}
