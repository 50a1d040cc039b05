import { Counter, Histogram, type Registry } from 'prom-client';

/** Metrics of the read service. */
export interface ReaderMetrics {
  /** Context reads by source (backend name, `cache`, `fallback`) and reason (`none` when used). */
  reads: Counter<'source' | 'reason'>;
  /** Time to answer a context read, by source. */
  readDuration: Histogram<'source'>;
  /** Backend reads by outcome (`ok`, `timeout`, `error`). */
  backendReads: Counter<'backend' | 'outcome'>;
  /** Reads that joined a backend call already in flight for the same thread. */
  sharedReads: Counter;
  /** HTTP requests by route template, method and status. */
  httpDuration: Histogram<'route' | 'method' | 'status'>;
}

/** Registers the reader's metrics on `registry`. */
export function createReaderMetrics(registry: Registry): ReaderMetrics {
  return {
    reads: new Counter({
      name: 'memfleet_context_reads_total',
      help: 'Context reads by source and reason (none when memory was used).',
      labelNames: ['source', 'reason'],
      registers: [registry],
    }),
    readDuration: new Histogram({
      name: 'memfleet_context_read_duration_seconds',
      help: 'Time to answer a context read, by source.',
      labelNames: ['source'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1],
      registers: [registry],
    }),
    backendReads: new Counter({
      name: 'memfleet_context_backend_reads_total',
      help: 'Backend context reads by outcome (ok, timeout, error).',
      labelNames: ['backend', 'outcome'],
      registers: [registry],
    }),
    sharedReads: new Counter({
      name: 'memfleet_context_shared_reads_total',
      help: 'Reads that joined a backend call already in flight for the same thread and mode.',
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'memfleet_http_request_duration_seconds',
      help: 'HTTP request latency by route, method and status.',
      labelNames: ['route', 'method', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
  };
}
