import { Counter, Histogram, type Registry } from 'prom-client';

/** Metrics of the HTTP API. */
export interface ApiMetrics {
  /** Messages received, by outcome (`queued`, `duplicate`). */
  messagesAccepted: Counter<'outcome'>;
  /** PII replaced before enqueue, by type (`email`, `phone`, `card`). */
  redactions: Counter<'type'>;
  /** HTTP requests by route template, method and status. */
  httpDuration: Histogram<'route' | 'method' | 'status'>;
}

/** Registers the API's metrics on `registry`. */
export function createApiMetrics(registry: Registry): ApiMetrics {
  return {
    messagesAccepted: new Counter({
      name: 'memfleet_messages_accepted_total',
      help: 'Messages received by the API, by outcome (queued or duplicate).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    redactions: new Counter({
      name: 'memfleet_redactions_total',
      help: 'PII occurrences replaced before enqueue, by type.',
      labelNames: ['type'],
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
