// Worker scaling: the throughput of 1, 2 and 4 worker processes (same WORKER_CONCURRENCY each)
// draining the same backlog into a Zep emulator that takes 100 ms over every call, and, in the
// same run, a bare BullMQ baseline whose jobs only wait 100 ms, at the same processes and
// concurrency. Every run starts from a fresh database and key prefix and is checked message by
// message: each one in the emulator exactly once, in accept order, nothing dead. Writes
// bench/results/worker-scaling.json and prints a table. Loopback only; bounded; stops by itself.
//
//   pnpm bench:scaling    (BENCH_PROCESSES, BENCH_CONCURRENCY, BENCH_THREADS, BENCH_MESSAGES,
//                          BENCH_BATCH, BENCH_DELAY_MS override the workload)
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createDrainQueue } from '@memfleet/jobs/thread-drain';
import { SERVICE_NODE_ARGS, startAppProcess, type AppProcess } from '@memfleet/testing/app-process';
import { stopFixtures, testRedisUrl, uniquePrefix } from '@memfleet/testing/fixtures';
import { waitFor } from '@memfleet/testing/wait-for';
import { startZepEmulator, type ZepEmulator } from '@memfleet/testing/zep-emulator';
import { Fleet } from '@memfleet/worker/fleet-harness';
import { ZEP_KEY } from '@memfleet/worker/zep-fleet-env';

const PROCESSES = (process.env.BENCH_PROCESSES ?? '1,2,4').split(',').map(Number);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 2);
const THREADS = Number(process.env.BENCH_THREADS ?? 160);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 60);
const BATCH = Number(process.env.BENCH_BATCH ?? 10);
const DELAY_MS = Number(process.env.BENCH_DELAY_MS ?? 100);
const TOTAL = THREADS * MESSAGES;
/** Backend calls a thread needs: its user, its thread, then one add per batch. */
const CALLS_PER_THREAD = 2 + Math.ceil(MESSAGES / BATCH);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const addCall = /^\/threads\/[^/]+\/messages$/;

interface Cpu {
  /** Share of the machine's CPU time that was busy (every process, ours or not), 0–1. */
  machine_busy: number;
  /** CPU seconds the whole machine was busy. */
  machine_s: number;
  /** CPU seconds of this process (the emulator, the polling) and all it started: API, workers, Redis, Postgres. */
  ours_s: number;
  /** CPU seconds of the worker processes alone. */
  workers_s: number;
  /** CPU seconds of other work on the machine meanwhile (machine_s - ours_s). */
  others_s: number;
}

interface FleetRun {
  processes: number;
  concurrency: number;
  messages: number;
  seconds: number;
  messages_per_s: number;
  add_calls: number;
  add_calls_per_s: number;
  backend_calls_per_s: number;
  ratio: number;
  cpu: Cpu;
  check: { threads: number; lost: number; duplicated: number; out_of_order: number; dead: number };
}

interface BaselineRun {
  processes: number;
  concurrency: number;
  jobs: number;
  seconds: number;
  jobs_per_s: number;
  ratio: number;
  cpu: Cpu;
}

const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

/** Busy and total clock ticks (1/100 s) of the whole machine, from /proc/stat (zeros elsewhere). */
function machineTicks(): { busy: number; total: number } {
  if (!existsSync('/proc/stat')) return { busy: 0, total: 0 };
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** Every process's parent and user + system CPU seconds so far, from /proc (empty elsewhere). */
function processTable(): Map<number, { ppid: number; cpuS: number }> {
  const table = new Map<number, { ppid: number; cpuS: number }>();
  if (!existsSync('/proc/self/stat')) return table;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const text = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // After the command name: state, ppid, …; utime and stime are the 12th and 13th.
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      table.set(Number(entry), {
        ppid: Number(fields[1]),
        cpuS: (Number(fields[11]) + Number(fields[12])) / 100,
      });
    } catch {
      // The process ended while the table was read.
    }
  }
  return table;
}

/** This process and all its descendants. */
function ourPids(table: Map<number, { ppid: number }>): Set<number> {
  const ours = new Set([process.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, { ppid }] of table) {
      if (!ours.has(pid) && ours.has(ppid)) {
        ours.add(pid);
        grew = true;
      }
    }
  }
  return ours;
}

/** Measures CPU from now until stop(): the machine's, ours and the given worker processes'. */
function cpuMeter(workerPids: number[]): { stop(): Cpu } {
  const m0 = machineTicks();
  const t0 = processTable();
  return {
    stop() {
      const m1 = machineTicks();
      const t1 = processTable();
      const used = (pids: Iterable<number>): number => {
        let sum = 0;
        for (const pid of pids) sum += (t1.get(pid)?.cpuS ?? 0) - (t0.get(pid)?.cpuS ?? 0);
        return sum;
      };
      const machineS = (m1.busy - m0.busy) / 100;
      const oursS = used(ourPids(t1));
      return {
        machine_busy: round((m1.busy - m0.busy) / Math.max(1, m1.total - m0.total)),
        machine_s: round(machineS, 1),
        ours_s: round(oursS, 1),
        workers_s: round(used(workerPids), 1),
        others_s: round(Math.max(0, machineS - oursS), 1),
      };
    },
  };
}

/** Posts the backlog: THREADS threads of MESSAGES messages each, a few requests in flight. */
async function postBacklog(fleet: Fleet, run: string): Promise<Map<string, string[]>> {
  const expected = new Map<string, string[]>();
  let next = 0;
  const poster = async (): Promise<void> => {
    for (let t = next++; t < THREADS; t = next++) {
      const threadId = `${run}-${t}`;
      const ids = Array.from({ length: MESSAGES }, (_, n) => `${threadId}-${n}`);
      expected.set(threadId, ids);
      for (let n = 0; n < MESSAGES; n += 100) {
        const res = await fleet.post(
          threadId,
          ids.slice(n, n + 100).map((id, k) => ({
            client_message_id: id,
            role: (n + k) % 2 === 0 ? 'user' : 'assistant',
            content: `message ${n + k} of thread ${t}`,
          })),
        );
        if (res.status !== 202) throw new Error(`posting ${threadId}: HTTP ${res.status}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, poster));
  return expected;
}

/** Every message in the emulator exactly once and in accept order, per thread. */
function check(emu: ZepEmulator, expected: Map<string, string[]>) {
  let lost = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  for (const [threadId, ids] of expected) {
    const stored = emu
      .threadMessages(`acme:${threadId}`)
      .map((m) => String(m.metadata?.client_message_id));
    const seen = new Set(stored);
    lost += ids.filter((id) => !seen.has(id)).length;
    duplicated += stored.length - seen.size;
    if (stored.length === ids.length && stored.some((id, i) => id !== ids[i])) outOfOrder += 1;
  }
  return { threads: expected.size, lost, duplicated, out_of_order: outOfOrder };
}

async function fleetRun(processes: number): Promise<Omit<FleetRun, 'ratio'>> {
  const emu = await startZepEmulator({ apiKeys: [ZEP_KEY] });
  // Every call takes DELAY_MS: the emulator waits, then stores and answers, as a remote service
  // doing the work would.
  emu.inject({ kind: 'delay', ms: DELAY_MS, commit: 'after', times: Infinity });
  const fleet = new Fleet();
  let queue: ReturnType<typeof createDrainQueue> | undefined;
  try {
    // Production timings (the defaults); only the backend, batch size and concurrency are set.
    await fleet.start(
      {
        MEMORY_BACKEND: 'zep',
        ZEP_API_URL: emu.url,
        ZEP_API_KEY: ZEP_KEY,
        ZEP_BATCH_SIZE: String(BATCH),
        WORKER_CONCURRENCY: String(CONCURRENCY),
      },
      0,
    );
    // The queue waits while the backlog is posted and the workers start, so the clock runs
    // from the moment every worker can take drains.
    queue = createDrainQueue({
      connection: fleet.redis,
      prefix: fleet.prefix,
      maxMessageAttempts: 10,
    });
    await queue.pause();
    const expected = await postBacklog(fleet, `n${processes}`);
    const workers: AppProcess[] = await Promise.all(
      Array.from({ length: processes }, (_, i) => fleet.addWorker(`worker-${i}`)),
    );
    const cpu = cpuMeter(workers.map((w) => w.pid));
    const t0 = Date.now();
    await queue.resume();
    await waitFor(
      `${TOTAL} messages written by ${processes} workers`,
      async () => (await fleet.ledgerCount('written')) >= TOTAL,
      600_000,
      250,
    );
    const usage = cpu.stop();
    const last = await fleet.pg.query<{ t: Date }>(
      "SELECT max(written_at) AS t FROM ledger WHERE status = 'written'",
    );
    const seconds = ((last.rows[0]?.t.getTime() ?? Date.now()) - t0) / 1000;
    const calls = emu.requests.filter((r) => r.arrivedAt >= t0);
    const adds = calls.filter((r) => r.method === 'POST' && addCall.test(r.path)).length;
    return {
      processes,
      concurrency: CONCURRENCY,
      messages: TOTAL,
      seconds: round(seconds),
      messages_per_s: round(TOTAL / seconds, 1),
      add_calls: adds,
      add_calls_per_s: round(adds / seconds, 1),
      backend_calls_per_s: round(calls.length / seconds, 1),
      cpu: usage,
      check: { ...check(emu, expected), dead: await fleet.ledgerCount('dead') },
    };
  } finally {
    await queue?.close();
    await fleet.stop();
    await emu.close();
  }
}

/** BullMQ alone: as many jobs as the fleet makes backend calls, each waiting DELAY_MS. */
async function baselineRun(processes: number): Promise<Omit<BaselineRun, 'ratio'>> {
  const redisUrl = await testRedisUrl();
  const prefix = uniquePrefix();
  const name = 'bench-sleep';
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection: redis, prefix });
  const workers: AppProcess[] = [];
  const jobs = THREADS * CALLS_PER_THREAD;
  try {
    await queue.pause();
    for (let i = 0; i < jobs; i += 1000) {
      await queue.addBulk(
        Array.from({ length: Math.min(1000, jobs - i) }, () => ({ name: 'sleep', data: {} })),
      );
    }
    for (let i = 0; i < processes; i++) {
      workers.push(
        startAppProcess('bench/sleep-worker.ts', {
          name: `sleep-worker-${i}`,
          nodeArgs: SERVICE_NODE_ARGS,
          env: {
            BENCH_REDIS_URL: redisUrl,
            BENCH_PREFIX: prefix,
            BENCH_QUEUE: name,
            BENCH_CONCURRENCY: String(CONCURRENCY),
            BENCH_SLEEP_MS: String(DELAY_MS),
          },
        }),
      );
    }
    await Promise.all(workers.map((w) => w.waitForLine(/"message":"sleep worker ready"/)));
    const cpu = cpuMeter(workers.map((w) => w.pid));
    const t0 = Date.now();
    await queue.resume();
    await waitFor(
      `${jobs} sleep jobs completed`,
      async () => (await queue.getCompletedCount()) >= jobs,
      600_000,
      100,
    );
    const usage = cpu.stop();
    const done = await queue.getJobs(['completed'], 0, -1);
    const last = Math.max(...done.map((j) => j.finishedOn ?? 0));
    const seconds = (last - t0) / 1000;
    return {
      processes,
      concurrency: CONCURRENCY,
      jobs,
      seconds: round(seconds),
      jobs_per_s: round(jobs / seconds, 1),
      cpu: usage,
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop(15_000)));
    await queue.obliterate({ force: true });
    await queue.close();
    await redis.quit();
  }
}

const load = loadavg();
console.log(
  `workload: ${THREADS} threads x ${MESSAGES} messages = ${TOTAL}, batch ${BATCH}, ` +
    `${CALLS_PER_THREAD} backend calls of ${DELAY_MS} ms per thread, concurrency ${CONCURRENCY} ` +
    `per process; ${cpus().length} CPUs, load average ${load.map((l) => l.toFixed(2)).join(' ')}`,
);
const fleetRuns: FleetRun[] = [];
const baselineRuns: BaselineRun[] = [];
try {
  for (const n of PROCESSES) {
    const run = await fleetRun(n);
    const ratio = round(run.messages_per_s / (fleetRuns[0]?.messages_per_s ?? run.messages_per_s));
    fleetRuns.push({ ...run, ratio });
    console.log(JSON.stringify(fleetRuns.at(-1)));
  }
  for (const n of PROCESSES) {
    const run = await baselineRun(n);
    const ratio = round(run.jobs_per_s / (baselineRuns[0]?.jobs_per_s ?? run.jobs_per_s));
    baselineRuns.push({ ...run, ratio });
    console.log(JSON.stringify(baselineRuns.at(-1)));
  }
} finally {
  await stopFixtures();
}

const problems = fleetRuns.filter(
  (r) => r.check.lost + r.check.duplicated + r.check.out_of_order + r.check.dead > 0,
);
console.log('');
const cores = (cpuS: number, seconds: number): string => (cpuS / seconds).toFixed(2);
console.log(
  'processes | messages/s | ratio | add calls/s | backend calls/s | bullmq 100 ms jobs/s | ratio | cores: ours | others',
);
for (const [i, r] of fleetRuns.entries()) {
  const b = baselineRuns[i];
  console.log(
    [
      String(r.processes).padStart(9),
      String(r.messages_per_s).padStart(10),
      `${r.ratio.toFixed(2)}x`.padStart(5),
      String(r.add_calls_per_s).padStart(11),
      String(r.backend_calls_per_s).padStart(15),
      String(b?.jobs_per_s ?? '').padStart(20),
      `${b?.ratio.toFixed(2) ?? ''}x`.padStart(5),
      cores(r.cpu.ours_s, r.seconds).padStart(11),
      cores(r.cpu.others_s, r.seconds).padStart(6),
    ].join(' | '),
  );
}
console.log(
  problems.length === 0
    ? `every run: ${TOTAL} messages in the emulator once each, in order, none dead`
    : `FAILED checks: ${JSON.stringify(problems.map((r) => ({ processes: r.processes, ...r.check })))}`,
);

const out = join(root, 'bench', 'results', 'worker-scaling.json');
await mkdir(dirname(out), { recursive: true });
await writeFile(
  out,
  `${JSON.stringify(
    {
      bench: 'worker-scaling',
      at: new Date().toISOString(),
      cpus: cpus().length,
      load_average_before: load.map((l) => round(l)),
      load_average_after: loadavg().map((l) => round(l)),
      backend_delay_ms: DELAY_MS,
      threads: THREADS,
      messages_per_thread: MESSAGES,
      batch: BATCH,
      concurrency: CONCURRENCY,
      fleet: fleetRuns,
      bullmq_baseline: baselineRuns,
    },
    null,
    2,
  )}\n`,
);
console.log(`wrote ${out}`);
if (problems.length > 0) process.exitCode = 1;
