import { Gauge, type Registry } from 'prom-client';

/** The job states {@link registerQueueMetrics} reports. */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;

/** What the queue gauges read at scrape time, per queue. */
export interface QueueSource {
  name: string;
  /** Job counts by state (BullMQ `getJobCounts`). */
  counts(): Promise<Partial<Record<(typeof QUEUE_STATES)[number], number>>>;
  /** Accept time (ms since the epoch) of the oldest work still waiting, or undefined. */
  oldestPendingAt(): Promise<number | undefined>;
}

/**
 * Queue depth per state and the age of the oldest waiting work, per queue, read from Redis at
 * every scrape. Every worker reports the same fleet-wide values: aggregate with `max`.
 */
export function registerQueueMetrics(
  registry: Registry,
  sources: readonly QueueSource[],
  now: () => number = Date.now,
): void {
  new Gauge({
    name: 'memfleet_queue_jobs',
    help: 'Jobs in each queue by state (waiting, active, delayed, failed), fleet-wide.',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      const all = await Promise.all(sources.map((s) => s.counts()));
      sources.forEach((s, i) => {
        for (const state of QUEUE_STATES) this.set({ queue: s.name, state }, all[i]?.[state] ?? 0);
      });
    },
  });
  new Gauge({
    name: 'memfleet_outbox_oldest_pending_seconds',
    help: 'Age of the oldest message (thread-drain) or job (user-erase) still waiting, fleet-wide; 0 when none waits.',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      const all = await Promise.all(sources.map((s) => s.oldestPendingAt()));
      sources.forEach((s, i) => {
        const at = all[i];
        this.set({ queue: s.name }, at === undefined ? 0 : Math.max(0, now() - at) / 1000);
      });
    },
  });
}
