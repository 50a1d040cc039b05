// `pnpm bench enqueue`: the API's POST /v1/threads/{id}/messages (key check, validation, redaction,
// dedupe, outbox append and drain job; one message per request, each with its own
// client_message_id) against a bare Express JSON echo, both real Node processes started the same
// way, under the same autocannon load (50 connections) in the same run: the API as one process (the
// default, and the echo's process model: the targets are checked on this run) and as a cluster of
// two (API_PROCESSES=2, one per core), all three up at once and taking turns under the load. No
// workers run, so the numbers are the API's alone; the per-tenant rate limit is off.
import { Fleet, KEY } from '@memfleet/worker/fleet-harness';
import { waitFor } from '@memfleet/testing/wait-for';
import {
  closedLoop,
  combineTurns,
  startServer,
  type Measure,
  type ScenarioResult,
} from './suite-lib.ts';

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

/** Turns each variant takes, SECONDS / TURNS each. */
const TURNS = 2;
/** Client message ids of turn `t` start at `t * TURN_IDS`, so every measured request is new. */
const TURN_IDS = 1_000_000;

/** One API fleet (no workers) with `processes` API processes, listening. */
async function startApi(processes: number): Promise<{ fleet: Fleet; name: string }> {
  const fleet = new Fleet();
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
      fleet.api.lines().filter((l) => l.includes('"message":"api listening"')).length >= processes,
    ),
  );
  const name = `API enqueue, ${processes === 1 ? '1 process' : `API_PROCESSES=${String(processes)}`}`;
  return { fleet, name };
}

export async function benchEnqueue(): Promise<ScenarioResult> {
  const fleets: Fleet[] = [];
  const echo = await startServer('bench/echo-server.ts', 'echo', /"message":"echo listening"/, {});
  let measured: Measure[];
  try {
    const variants: { name: string; url: string }[] = [];
    for (const processes of [1, 2]) {
      const { fleet, name } = await startApi(processes);
      fleets.push(fleet);
      variants.push({ name, url: fleet.apiUrl });
    }
    variants.push({ name: 'bare Express JSON echo', url: echo.url });
    const load = { method: 'POST' as const, body, path, connections: CONNECTIONS, headers };
    // Warm-up ids are distinct from the measured ones, so the measured requests are all new.
    for (const v of variants) {
      await closedLoop('warm-up', {
        ...load,
        body: (n) => body(n + 100 * TURN_IDS),
        url: v.url,
        seconds: 2,
      });
    }
    // The variants take turns, TURNS times, so a change in the machine's load during the run
    // falls on all of them alike.
    const turns = new Map<string, Measure[]>(variants.map((v) => [v.name, []]));
    for (let turn = 0; turn < TURNS; turn++) {
      for (const v of variants) {
        const run = await closedLoop(v.name, {
          ...load,
          body: (n) => body(n + turn * TURN_IDS),
          url: v.url,
          seconds: SECONDS / TURNS,
        });
        turns.get(v.name)?.push(run);
      }
    }
    measured = variants.map((v) => combineTurns(v.name, turns.get(v.name) ?? []));
  } finally {
    await echo.proc.stop(15_000);
    for (const fleet of fleets) await fleet.stop();
  }
  const [single, clustered, echoRun] = measured;
  if (single === undefined || clustered === undefined || echoRun === undefined) {
    throw new Error('a variant was not measured');
  }
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
      `${String(CONNECTIONS)} connections, ${String(SECONDS)} s each after a 2 s warm-up, in ${String(TURNS)} turns taken in order (API as 1 process, as 2, then the echo), so a change in the machine's load falls on all alike; latencies are the worse turn's; the echo (one process) and the API are separate Node processes (tsx) on the same machine as the load`,
    ],
  };
}
