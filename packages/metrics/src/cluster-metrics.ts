import cluster from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

const REQUEST = 'memfleet:cluster-metrics';
const REPLY = 'memfleet:cluster-metrics-reply';
const TIMEOUT_MS = 5000;

interface MetricsReply {
  type: typeof REPLY;
  id: number;
  text?: string;
  error?: string;
}

function isReply(message: unknown): message is MetricsReply {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === REPLY &&
    typeof (message as { id?: unknown }).id === 'number'
  );
}

function isRequest(message: unknown): message is { type: typeof REQUEST; id: number } {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === REQUEST &&
    typeof (message as { id?: unknown }).id === 'number'
  );
}

/**
 * The Prometheus text a process's `/metrics` answers. In a single process: its registry. In a
 * process of a Node cluster (`API_PROCESSES` > 1): the sum over every process of the cluster,
 * gathered by the primary with prom-client's `AggregatorRegistry`, whichever process Prometheus
 * happens to reach. Call once per registry, at start.
 */
export function metricsSource(registry: Registry): () => Promise<string> {
  if (!cluster.isWorker) return () => registry.metrics();
  AggregatorRegistry.setRegistries([registry]);
  // The constructor installs prom-client's answer to the primary's collection requests.
  new AggregatorRegistry();
  const pending = new Map<number, { resolve(text: string): void; reject(err: Error): void }>();
  let next = 0;
  process.on('message', (message: unknown) => {
    if (!isReply(message)) return;
    const waiting = pending.get(message.id);
    if (waiting === undefined) return;
    pending.delete(message.id);
    if (message.text !== undefined) waiting.resolve(message.text);
    else waiting.reject(new Error(`cluster metrics: ${message.error ?? 'no answer'}`));
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(
          new Error(`cluster metrics: no answer from the primary in ${String(TIMEOUT_MS)} ms`),
        );
      }, TIMEOUT_MS);
      pending.set(id, {
        resolve(text) {
          clearTimeout(timer);
          resolve(text);
        },
        reject(err) {
          clearTimeout(timer);
          reject(err);
        },
      });
      process.send?.({ type: REQUEST, id });
    });
}

/** In a cluster's primary: answers its processes' requests for the whole cluster's metrics. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: unknown) => {
    if (!isRequest(message)) return;
    aggregator.clusterMetrics().then(
      (text) => {
        if (worker.isConnected()) worker.send({ type: REPLY, id: message.id, text });
      },
      (err: unknown) => {
        const error = err instanceof Error ? err.message : String(err);
        if (worker.isConnected()) worker.send({ type: REPLY, id: message.id, error });
      },
    );
  });
}
