// `pnpm bench e2e`: messages per second from HTTP accept to `written` through the whole fleet (API,
// one worker process at the default concurrency) with the postgres backend and with the Zep
// emulator answering at once, against raw BullMQ in the same run: a Queue and a worker process
// whose processor does nothing, at high concurrency, jobs added in bulk, run before and after the
// fleet's runs (the baseline is the mean of the two). Requests carry BENCH_E2E_PER_REQUEST
// messages (default 10: a client syncing a conversation's recent turns); one message per request
// (postgres) and 100 (the contract's maximum, an import; both backends) are measured too. Then
// the enqueue-to-written latency (the ledger's accepted_at to written_at) at a steady 500
// messages/s with the Zep emulator taking 50 ms over every call, on threads that already exist,
// after a few seconds of the same load: as chat turns (a request carries the user's message and
// the assistant's reply, 250 requests/s), and one message per request (500 requests/s).
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { startAppProcess } from '@memfleet/testing/app-process';
import { testRedisUrl, uniquePrefix } from '@memfleet/testing/fixtures';
import { waitFor } from '@memfleet/testing/wait-for';
import { startZepEmulator, type ZepEmulator } from '@memfleet/testing/zep-emulator';
import { Fleet, KEY } from '@memfleet/worker/fleet-harness';
import { ZEP_KEY } from '@memfleet/worker/zep-fleet-env';
import {
  closedLoop,
  openLoop,
  percentiles,
  round,
  type Measure,
  type ScenarioResult,
} from './suite-lib.ts';

const MESSAGES = Number(process.env.BENCH_E2E_MESSAGES ?? 30_000);
/** The one-message-a-request run is slower: fewer messages keep it short. */
const SINGLE_MESSAGES = Math.min(MESSAGES, 10_000);
/**
 * Messages (or no-op jobs) of the same load before each throughput run, not measured: the
 * processes run optimized code, as in a fleet that has been running. After 5 000, V8 was still
 * compiling the worker's drain path (about 1.8 s of optimizing compiles during the measured run);
 * with the postgres backend the throughput stopped rising at about 20 000 (5 000 to 40 000
 * tried). With the Zep emulator the worker still spent about 1.1 s compiling over the 20 000
 * messages after the first 20 000 (the drain, the outbox's commit and head read, the ledger's
 * upsert among them), and 50 000 gave 15 % less worker CPU a message. The baseline gets the same.
 */
const WARM_UP_MESSAGES = Number(process.env.BENCH_E2E_WARM_UP ?? 50_000);
/** The contract's most messages a request: a client importing a conversation. */
const IMPORT_PER_REQUEST = 100;
const THREADS = 300;
const PER_REQUEST = Number(process.env.BENCH_E2E_PER_REQUEST ?? 10);
const RATE = 500;
const RATE_SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
/** Seconds of the same steady load before each latency measurement. */
const LATENCY_WARM_UP_SECONDS = 5;
const LATENCY_THREADS = 500;
const LATENCY_CONCURRENCY = process.env.BENCH_E2E_CONCURRENCY ?? '200';
const NOOP_CONCURRENCY = 100;

/** Request `n`: `per` messages of thread `n % threads`, ids `<tag>-<n>-<i>`. */
const request = (tag: string, n: number, threads: number, per: number): string =>
  JSON.stringify({
    user_id: `u-${String(n % threads)}`,
    messages: Array.from({ length: per }, (_, i) => ({
      client_message_id: `${tag}-${String(n)}-${String(i)}`,
      role: i % 2 === 0 ? 'user' : 'assistant',
      content: `Turn ${String(n)}.${String(i)}: can we move the check-in to 3pm? My number is (415) 555-2671.`,
    })),
  });
const headers = { authorization: `Bearer ${KEY}` };
const common = { RATE_LIMIT_ENQUEUE_PER_S: '0', RATE_LIMIT_READ_PER_S: '0' };

/** Posts `messages` messages, `per` a request (50 connections), and waits until all are written. */
async function throughputRun(
  name: string,
  env: Record<string, string>,
  per: number,
  messages = MESSAGES,
): Promise<Measure> {
  const fleet = new Fleet();
  try {
    await fleet.start({ ...common, ...env }, 1);
    const load = {
      url: fleet.apiUrl,
      method: 'POST' as const,
      headers,
      path: (n: number) => `/v1/threads/t-${String(n % THREADS)}/messages`,
      connections: 50,
    };
    // The same load first, not measured, as the other scenarios' warm-ups: every thread exists and
    // the processes run optimized code, as in a fleet that has been running.
    const warmRequests = Math.ceil(WARM_UP_MESSAGES / per);
    await closedLoop('warm-up', {
      ...load,
      body: (n) => request('h', n, THREADS, per),
      amount: warmRequests,
    });
    const warm = warmRequests * per;
    await waitFor(
      'the warm-up written',
      async () => (await fleet.ledgerCount('written')) >= warm,
      180_000,
      100,
    );
    const t0 = Date.now();
    const post = await closedLoop('post', {
      ...load,
      body: (n) => request('m', n, THREADS, per),
      amount: Math.ceil(messages / per),
    });
    const total = Math.ceil(messages / per) * per;
    await waitFor(
      `${String(total)} messages written`,
      async () => (await fleet.ledgerCount('written')) >= warm + total,
      180_000,
      100,
    );
    const last = await fleet.pg.query<{ t: Date }>(
      "SELECT max(written_at) AS t FROM ledger WHERE status = 'written' AND client_message_id LIKE 'm-%'",
    );
    const seconds = ((last.rows[0]?.t.getTime() ?? Date.now()) - t0) / 1000;
    return {
      name,
      throughput: round(total / seconds),
      unit: 'msg/s',
      errors: post.errors ?? 0,
      extra: {
        messages: total,
        per_request: per,
        threads: THREADS,
        seconds: round(seconds, 2),
        accept_req_per_s: post.throughput,
        ...env,
      },
    };
  } finally {
    await fleet.stop();
  }
}

/** Raw BullMQ: MESSAGES no-op jobs added in bulk, drained by one worker process. */
async function bullmqRun(): Promise<Measure> {
  const redisUrl = await testRedisUrl();
  const prefix = uniquePrefix();
  const name = 'bench-noop';
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection: redis, prefix });
  const worker = startAppProcess('bench/sleep-worker.ts', {
    name: 'noop-worker',
    env: {
      BENCH_REDIS_URL: redisUrl,
      BENCH_PREFIX: prefix,
      BENCH_QUEUE: name,
      BENCH_CONCURRENCY: String(NOOP_CONCURRENCY),
      BENCH_SLEEP_MS: '0',
    },
  });
  /** Adds `count` no-op jobs, 500 a call, and waits until `completed` jobs are done in all. */
  const run = async (count: number, warm: boolean, completed: number): Promise<void> => {
    for (let i = 0; i < count; i += 500) {
      await queue.addBulk(
        Array.from({ length: Math.min(500, count - i) }, (_, j) => ({
          name: 'noop',
          data: { n: i + j, warm },
        })),
      );
    }
    await waitFor(
      `${String(completed)} no-op jobs completed`,
      async () => (await queue.getCompletedCount()) >= completed,
      120_000,
      50,
    );
  };
  try {
    await worker.waitForLine(/"message":"sleep worker ready"/, 30_000);
    // A warm-up of the same size as the fleet's, not measured.
    await run(WARM_UP_MESSAGES, true, WARM_UP_MESSAGES);
    const t0 = Date.now();
    await run(MESSAGES, false, WARM_UP_MESSAGES + MESSAGES);
    const done = await queue.getJobs(['completed'], 0, -1);
    const measured = done.filter((j) => (j.data as { warm?: boolean }).warm === false);
    const seconds = (Math.max(...measured.map((j) => j.finishedOn ?? 0)) - t0) / 1000;
    return {
      name: 'raw BullMQ no-op jobs',
      throughput: round(MESSAGES / seconds),
      unit: 'msg/s',
      extra: { jobs: MESSAGES, concurrency: NOOP_CONCURRENCY, seconds: round(seconds, 2) },
    };
  } finally {
    await worker.stop(15_000);
    await queue.obliterate({ force: true });
    await queue.close();
    await redis.quit();
  }
}

/**
 * A steady RATE messages/s for RATE_SECONDS, `per` messages a request, into a fleet on a Zep
 * emulator at 50 ms a call. Each thread gets one message first (its Zep user and thread are created
 * then, two more calls), so the measured messages are those of a running conversation, and
 * LATENCY_WARM_UP_SECONDS of the same load go before the measured ones. The worker runs
 * WORKER_CONCURRENCY=200: at 500 drains/s of 50 ms or more each, 32 slots cannot keep up.
 */
async function latencyRun(emu: ZepEmulator, per: number): Promise<Measure> {
  const fleet = new Fleet();
  const path = (n: number) => `/v1/threads/l-${String(n % LATENCY_THREADS)}/messages`;
  try {
    await fleet.start(
      {
        ...common,
        MEMORY_BACKEND: 'zep',
        ZEP_API_URL: emu.url,
        ZEP_API_KEY: ZEP_KEY,
        WORKER_CONCURRENCY: LATENCY_CONCURRENCY,
      },
      1,
    );
    await closedLoop('threads', {
      url: fleet.apiUrl,
      method: 'POST',
      headers,
      body: (n) => request('w', n, LATENCY_THREADS, 1),
      path,
      connections: 20,
      amount: LATENCY_THREADS,
    });
    await waitFor(
      'every thread created',
      async () => (await fleet.ledgerCount('written')) >= LATENCY_THREADS,
      60_000,
      100,
    );
    // The same load first, not measured: the processes reach their steady state (V8 is still
    // optimizing the hot paths for several seconds after start at this rate), as a fleet that has
    // been running does.
    const warm = await openLoop(
      fleet.apiUrl,
      path,
      headers,
      RATE / per,
      LATENCY_WARM_UP_SECONDS,
      (n) => request('h', n, LATENCY_THREADS, per),
    );
    const before = LATENCY_THREADS + warm.ok * per;
    await waitFor(
      'the warm-up written',
      async () => (await fleet.ledgerCount('written')) >= before,
      120_000,
      200,
    );
    const sent = await openLoop(fleet.apiUrl, path, headers, RATE / per, RATE_SECONDS, (n) =>
      request('m', n, LATENCY_THREADS, per),
    );
    await waitFor(
      `${String(sent.ok * per)} messages written`,
      async () => (await fleet.ledgerCount('written')) >= before + sent.ok * per,
      120_000,
      200,
    );
    const rows = await fleet.pg.query<{ ms: string }>(
      `SELECT extract(epoch FROM written_at - accepted_at) * 1000 AS ms FROM ledger
       WHERE status = 'written' AND client_message_id LIKE 'm-%'`,
    );
    return {
      name: `enqueue-to-written, 500 msg/s as ${per === 1 ? '1 message' : `${String(per)} messages`} a request, Zep emulator at 50 ms`,
      throughput: round(sent.achieved * per),
      unit: 'msg/s sent',
      latency_ms: percentiles(rows.rows.map((r) => Number(r.ms))),
      errors: sent.errors,
      extra: {
        messages: RATE * RATE_SECONDS,
        per_request: per,
        requests_per_s: sent.achieved,
        threads: LATENCY_THREADS,
        worker_concurrency: LATENCY_CONCURRENCY,
        http_ms: percentiles(sent.ms),
        statuses: sent.statuses,
      },
    };
  } finally {
    await fleet.stop();
  }
}

export async function benchE2e(): Promise<ScenarioResult> {
  const emu = await startZepEmulator({ apiKeys: [ZEP_KEY] });
  const zep = { MEMORY_BACKEND: 'zep', ZEP_API_URL: emu.url, ZEP_API_KEY: ZEP_KEY };
  try {
    const bullmqBefore = await bullmqRun();
    const pgRun = await throughputRun(
      `fleet, postgres backend, ${String(PER_REQUEST)} msg/request`,
      {},
      PER_REQUEST,
    );
    const zepRun = await throughputRun(
      `fleet, Zep emulator at 0 ms, ${String(PER_REQUEST)} msg/request`,
      zep,
      PER_REQUEST,
    );
    const single = await throughputRun(
      'fleet, postgres backend, 1 msg/request',
      {},
      1,
      SINGLE_MESSAGES,
    );
    const imported = await throughputRun(
      `fleet, postgres backend, ${String(IMPORT_PER_REQUEST)} msg/request`,
      {},
      IMPORT_PER_REQUEST,
    );
    const importedZep = await throughputRun(
      `fleet, Zep emulator at 0 ms, ${String(IMPORT_PER_REQUEST)} msg/request`,
      zep,
      IMPORT_PER_REQUEST,
    );
    // Raw BullMQ again after the fleet's runs: the baseline is the mean of the two, so a change in
    // the machine's load during the fleet's runs falls on the baseline too.
    const bullmqAfter = await bullmqRun();
    const bullmq: Measure = {
      ...bullmqBefore,
      throughput: round((bullmqBefore.throughput + bullmqAfter.throughput) / 2),
      extra: {
        ...bullmqBefore.extra,
        runs: [bullmqBefore.throughput, bullmqAfter.throughput],
      },
    };
    emu.inject({ kind: 'delay', ms: 50, commit: 'after', times: Infinity });
    const turns = await latencyRun(emu, 2);
    const latency = await latencyRun(emu, 1);
    const ratioPg = pgRun.throughput / bullmq.throughput;
    const ratioZep = zepRun.throughput / bullmq.throughput;
    const latencyCheck = (m: Measure, how: string) => {
      const p95 = m.latency_ms?.p95 ?? Infinity;
      return {
        target: `enqueue-to-written p95 <= 150 ms at 500 msg/s, emulator at 50 ms (${how})`,
        measured: `${String(p95)} ms (achieved ${String(m.throughput)} msg/s)`,
        pass: p95 <= 150 && m.throughput >= RATE * 0.95 && (m.errors ?? 0) === 0,
      };
    };
    return {
      scenario: 'e2e',
      measures: [pgRun, zepRun, single, imported, importedZep, bullmq, turns, latency],
      checks: [
        {
          target: 'fleet msg/s (postgres) >= 1.0x raw BullMQ no-op jobs/s',
          measured: `${ratioPg.toFixed(2)}x`,
          pass: ratioPg >= 1,
        },
        {
          target: 'fleet msg/s (Zep emulator, 0 ms) >= 1.0x raw BullMQ no-op jobs/s',
          measured: `${ratioZep.toFixed(2)}x`,
          pass: ratioZep >= 1,
        },
        {
          target: `fleet msg/s (postgres, ${String(IMPORT_PER_REQUEST)} msg/request) >= 1.0x raw BullMQ no-op jobs/s`,
          measured: `${(imported.throughput / bullmq.throughput).toFixed(2)}x`,
          pass: imported.throughput >= bullmq.throughput,
        },
        {
          target: `fleet msg/s (Zep emulator, 0 ms, ${String(IMPORT_PER_REQUEST)} msg/request) >= 1.0x raw BullMQ no-op jobs/s`,
          measured: `${(importedZep.throughput / bullmq.throughput).toFixed(2)}x`,
          pass: importedZep.throughput >= bullmq.throughput,
        },
        latencyCheck(turns, 'chat turns, 2 messages a request'),
        latencyCheck(latency, '1 message a request'),
      ],
      notes: [
        `throughput: ${String(MESSAGES)} messages over ${String(THREADS)} threads, ${String(PER_REQUEST)} per request (and ${String(IMPORT_PER_REQUEST)} per request; and ${String(SINGLE_MESSAGES)} messages 1 per request, for comparison), 50 connections, 1 API process, 1 worker process (default concurrency), after ${String(WARM_UP_MESSAGES)} messages of the same load on the same threads (not measured); the clock runs from the first request to the last written_at`,
        `raw BullMQ: ${String(MESSAGES)} no-op jobs added in bulk (500 a call) after ${String(WARM_UP_MESSAGES)} not measured, 1 worker process at concurrency ${String(NOOP_CONCURRENCY)}; the clock runs from the first add to the last finishedOn; run before and after the fleet's throughput runs (${String(bullmqBefore.throughput)} and ${String(bullmqAfter.throughput)} jobs/s), the baseline their mean`,
        `latency: ${String(LATENCY_THREADS)} threads created first (one message each), then ${String(RATE)} msg/s for ${String(RATE_SECONDS)} s (open loop) after ${String(LATENCY_WARM_UP_SECONDS)} s of the same load (not measured), as chat turns (2 messages a request, ${String(RATE / 2)} requests/s) and as 1 message a request, 1 worker process at WORKER_CONCURRENCY=${LATENCY_CONCURRENCY}`,
      ],
    };
  } finally {
    await emu.close();
  }
}
