// `pnpm bench enqueue`: the API's POST /v1/threads/{id}/messages (key check, validation, redaction,
// dedupe, outbox append and drain job; one message per request, each with its own
// client_message_id) against a bare Express JSON echo, both real Node processes started the same
// way, under the same autocannon load (50 connections) in the same run. No workers run, so the
// numbers are the API's alone; the per-tenant rate limit is off.
import { Fleet, KEY } from '@memfleet/worker/fleet-harness';
import { closedLoop, startServer, type ScenarioResult } from './suite-lib.ts';

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

export async function benchEnqueue(): Promise<ScenarioResult> {
  const echo = await startServer('bench/echo-server.ts', 'echo', /"message":"echo listening"/, {});
  const fleet = new Fleet();
  try {
    await fleet.start({ RATE_LIMIT_ENQUEUE_PER_S: '0', RATE_LIMIT_READ_PER_S: '0' }, 0);
    const load = { method: 'POST' as const, body, path, connections: CONNECTIONS };
    const headers = { authorization: `Bearer ${KEY}` };
    // A short warm-up of each, so both are measured with their code compiled.
    await closedLoop('warm-up', { ...load, url: echo.url, headers, seconds: 2 });
    await closedLoop('warm-up', { ...load, url: fleet.apiUrl, headers, seconds: 2 });
    const echoRun = await closedLoop('bare Express JSON echo', {
      ...load,
      url: echo.url,
      headers,
      seconds: SECONDS,
    });
    const apiRun = await closedLoop('API enqueue (1 message/request)', {
      ...load,
      url: fleet.apiUrl,
      headers,
      seconds: SECONDS,
    });
    const ratio = apiRun.throughput / echoRun.throughput;
    const p99 = apiRun.latency_ms?.p99 ?? Infinity;
    return {
      scenario: 'enqueue',
      measures: [apiRun, echoRun],
      checks: [
        {
          target: 'API req/s >= 0.8x bare Express echo',
          measured: `${ratio.toFixed(2)}x`,
          pass: ratio >= 0.8 && (apiRun.errors ?? 0) === 0,
        },
        {
          target: 'API p99 <= 25 ms at 50 connections',
          measured: `${String(p99)} ms`,
          pass: p99 <= 25,
        },
      ],
      notes: [
        `${String(CONNECTIONS)} connections, ${String(SECONDS)} s each after a 2 s warm-up; API and echo are separate Node processes (tsx) on the same machine as the load`,
      ],
    };
  } finally {
    await fleet.stop();
    await echo.proc.stop(15_000);
  }
}
