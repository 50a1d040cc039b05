import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * A fresh prom-client registry with the default process metrics and a `process` label
 * (`api`, `worker`, ...). One per process, made in its main.ts; tests make their own.
 */
export function createRegistry(processName: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ process: processName });
  collectDefaultMetrics({ register: registry });
  // Gauges named like counters, which `promtool check metrics` rejects; each is only the sum of
  // the per-type gauge it sits beside (nodejs_active_handles, …), which stays.
  for (const name of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ]) {
    registry.removeSingleMetric(name);
  }
  return registry;
}
