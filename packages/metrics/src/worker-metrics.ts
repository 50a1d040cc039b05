import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

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
  /** 429 answers from the backend (each pauses the fleet; not a failure). */
  rateLimited: Counter<'backend'>;
  /** Calls the backend refused for bad credentials (each holds every write). */
  authRejected: Counter<'backend'>;
  /** Breaker transitions by the state entered (`open`, `closed`) as seen by this worker. */
  breakerTransitions: Counter<'backend' | 'to'>;
  /** Drains handed back to wait for the backend, by reason (`rate_limited`, `breaker_open`, `auth`). */
  drainsPaused: Counter<'backend' | 'reason'>;
  /** Messages a drain held back instead of writing, by the same reasons. */
  writesSkipped: Counter<'backend' | 'reason'>;
  /** The pause a 429 asked for (Retry-After, else the default), in seconds. */
  retryAfter: Histogram<'backend'>;
}

/** The fleet-wide gate of a backend, as {@link registerGateMetrics} reads it at scrape time. */
export interface GateSnapshot {
  /** 0 closed, 1 half-open, 2 open. */
  breaker: number;
  authFailing: boolean;
  rateLimitedForMs: number;
}

/**
 * Gauges of the fleet-wide backend gate, read from Redis at every scrape so that each worker
 * reports the state the whole fleet shares.
 */
export function registerGateMetrics(
  registry: Registry,
  backend: string,
  read: () => Promise<GateSnapshot>,
): void {
  let last: Promise<GateSnapshot> | undefined;
  // One read serves the three gauges of a scrape.
  const snapshot = (): Promise<GateSnapshot> => {
    last ??= read().finally(() => {
      setImmediate(() => {
        last = undefined;
      });
    });
    return last;
  };
  new Gauge({
    name: 'memfleet_breaker_state',
    help: 'Circuit breaker of the backend, fleet-wide: 0 closed, 1 half-open, 2 open.',
    labelNames: ['backend'],
    registers: [registry],
    async collect() {
      this.set({ backend }, (await snapshot()).breaker);
    },
  });
  new Gauge({
    name: 'memfleet_backend_auth_failing',
    help: '1 while the backend rejects the credentials and writes are held.',
    labelNames: ['backend'],
    registers: [registry],
    async collect() {
      this.set({ backend }, (await snapshot()).authFailing ? 1 : 0);
    },
  });
  new Gauge({
    name: 'memfleet_backend_rate_limited_seconds',
    help: 'Remaining fleet-wide pause after a 429 from the backend.',
    labelNames: ['backend'],
    registers: [registry],
    async collect() {
      this.set({ backend }, (await snapshot()).rateLimitedForMs / 1000);
    },
  });
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
    rateLimited: new Counter({
      name: 'memfleet_backend_rate_limited_total',
      help: '429 answers from the backend; each pauses the whole fleet for its Retry-After.',
      labelNames: ['backend'],
      registers: [registry],
    }),
    authRejected: new Counter({
      name: 'memfleet_backend_auth_rejected_total',
      help: 'Backend calls refused for bad credentials (401/403); writes are held meanwhile.',
      labelNames: ['backend'],
      registers: [registry],
    }),
    breakerTransitions: new Counter({
      name: 'memfleet_breaker_transitions_total',
      help: 'Circuit breaker transitions made by this worker, by the state entered.',
      labelNames: ['backend', 'to'],
      registers: [registry],
    }),
    drainsPaused: new Counter({
      name: 'memfleet_drains_paused_total',
      help: 'Drains handed back to wait for the backend, by reason.',
      labelNames: ['backend', 'reason'],
      registers: [registry],
    }),
    writesSkipped: new Counter({
      name: 'memfleet_writes_skipped_total',
      help: 'Messages held back instead of written because the fleet waits for the backend (rate limit, open breaker, rejected credentials).',
      labelNames: ['backend', 'reason'],
      registers: [registry],
    }),
    retryAfter: new Histogram({
      name: 'memfleet_backend_retry_after_seconds',
      help: 'Fleet-wide pauses asked for by 429 answers (Retry-After, else WORKER_RATE_LIMIT_DEFAULT_MS).',
      labelNames: ['backend'],
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
  };
}
