import { Counter, Histogram, type Registry } from 'prom-client';

/** Metrics of the worker fleet. */
export interface WorkerMetrics {
  /** Backend calls by backend, op (`ensure_user`, `ensure_thread`, `add_messages`, `find_written`) and outcome. */
  backendRequests: Counter<'backend' | 'op' | 'outcome'>;
  /** Backend call latency by backend and op. */
  backendDuration: Histogram<'backend' | 'op'>;
  /** Messages per `add_messages` call. */
  batchSize: Histogram<'backend'>;
  /** Messages that reached the backend (or were found there on reconcile). */
  messagesWritten: Counter<'backend'>;
  /** Messages dead-lettered, by reason (`permanent`, `attempts_exhausted`, `corrupt`). */
  messagesDead: Counter<'backend' | 'reason'>;
  /** Messages skipped because the backend or ledger already had them. */
  duplicatesSkipped: Counter<'backend' | 'source'>;
  /** Time from API accept to written. */
  enqueueToWritten: Histogram<'backend'>;
}

/** Registers the worker's metrics on `registry`. */
export function createWorkerMetrics(registry: Registry): WorkerMetrics {
  return {
    backendRequests: new Counter({
      name: 'memfleet_backend_requests_total',
      help: 'Memory backend calls by backend, op and outcome (ok or the error kind).',
      labelNames: ['backend', 'op', 'outcome'],
      registers: [registry],
    }),
    backendDuration: new Histogram({
      name: 'memfleet_backend_request_duration_seconds',
      help: 'Memory backend call latency by backend and op.',
      labelNames: ['backend', 'op'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: 'memfleet_batch_size_messages',
      help: 'Messages per add_messages call.',
      labelNames: ['backend'],
      buckets: [1, 2, 5, 10, 20, 30, 50, 100],
      registers: [registry],
    }),
    messagesWritten: new Counter({
      name: 'memfleet_messages_written_total',
      help: 'Messages written to the backend (including ones found there on reconcile).',
      labelNames: ['backend'],
      registers: [registry],
    }),
    messagesDead: new Counter({
      name: 'memfleet_messages_dead_total',
      help: 'Messages moved to the dead-letter state, by reason.',
      labelNames: ['backend', 'reason'],
      registers: [registry],
    }),
    duplicatesSkipped: new Counter({
      name: 'memfleet_duplicates_skipped_total',
      help: 'Messages not sent again because the backend or the ledger already had them.',
      labelNames: ['backend', 'source'],
      registers: [registry],
    }),
    enqueueToWritten: new Histogram({
      name: 'memfleet_enqueue_to_written_seconds',
      help: 'Time from API accept to written in the backend.',
      labelNames: ['backend'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
  };
}
