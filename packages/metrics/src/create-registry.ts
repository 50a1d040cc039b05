import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * A fresh prom-client registry with the default process metrics and a `process` label
 * (`api`, `worker`, ...). One per process, made in its main.ts; tests make their own.
 */
export function createRegistry(processName: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ process: processName });
  collectDefaultMetrics({ register: registry });
  return registry;
}
