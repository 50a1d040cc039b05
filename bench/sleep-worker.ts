// The baseline process of the worker-scaling bench: a bare BullMQ worker whose processor only
// waits, as long as one backend call takes. It shows what BullMQ alone achieves with the same
// processes, concurrency and latency, the ceiling memfleet's drain workers are compared with.
//
//   BENCH_REDIS_URL, BENCH_PREFIX, BENCH_QUEUE, BENCH_CONCURRENCY, BENCH_SLEEP_MS
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    console.error(JSON.stringify({ message: `${name} is required` }));
    process.exit(2);
  }
  return value;
}

const sleepMs = Number(required('BENCH_SLEEP_MS'));
// Workers block on Redis; BullMQ requires maxRetriesPerRequest: null on their connection.
const redis = new Redis(required('BENCH_REDIS_URL'), { maxRetriesPerRequest: null });
const worker = new Worker(
  required('BENCH_QUEUE'),
  // BENCH_SLEEP_MS=0 is a true no-op: no timer (a 0 ms timeout still waits for the timers phase).
  sleepMs > 0
    ? () => new Promise<void>((resolve) => setTimeout(resolve, sleepMs))
    : () => Promise.resolve(),
  {
    connection: redis,
    prefix: required('BENCH_PREFIX'),
    concurrency: Number(required('BENCH_CONCURRENCY')),
  },
);
worker.on('error', (err) =>
  console.error(JSON.stringify({ message: 'worker error', err: err.message })),
);
await worker.waitUntilReady();
console.log(JSON.stringify({ message: 'sleep worker ready', pid: process.pid }));

process.once('SIGTERM', () => {
  void worker
    .close()
    .then(() => redis.quit())
    .then(() => process.exit(0));
});
