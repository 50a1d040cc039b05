import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { Registry } from 'prom-client';
import { parse } from 'yaml';
import { createApiMetrics } from './api-metrics.ts';
import { createRegistry } from './create-registry.ts';
import { createFlagMetrics } from './flag-metrics.ts';
import { registerQueueMetrics } from './queue-metrics.ts';
import { createReaderMetrics } from './reader-metrics.ts';
import { createWorkerMetrics, registerGateMetrics } from './worker-metrics.ts';

/**
 * The Prometheus rules (infra/prometheus) and the Grafana dashboard (infra/grafana) may only name
 * metrics that memfleet's processes export, and recording rules that the rules define: a renamed
 * metric must not leave an alert that can never fire.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PROMETHEUS = join(ROOT, 'infra/prometheus');
const DASHBOARD = join(ROOT, 'infra/grafana/memfleet-dashboard.json');

/** `memfleet_*` metric names and `memfleet:*` recording rule names in a text. */
const NAME = /\bmemfleet[_:][A-Za-z0-9_:]*/g;

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface AlertTest {
  alertname: string;
  exp_alerts?: unknown[];
}

interface RuleTestFile {
  tests: { input_series?: { series: string }[]; alert_rule_test?: AlertTest[] }[];
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yml'))
    .sort()
    .map((f) => join(dir, f));
}

function rules(): Rule[] {
  return yamlFiles(join(PROMETHEUS, 'rules')).flatMap((file) => {
    const doc = parse(readFileSync(file, 'utf8')) as { groups: { rules: Rule[] }[] };
    return doc.groups.flatMap((g) => g.rules);
  });
}

function ruleTests(): RuleTestFile[] {
  return yamlFiles(join(PROMETHEUS, 'tests')).map(
    (file) => parse(readFileSync(file, 'utf8')) as RuleTestFile,
  );
}

/** Builds each process's registry as its runtime does and lists what a scrape would show. */
async function exportedNames(): Promise<Set<string>> {
  const api = createRegistry('api');
  createApiMetrics(api);
  createFlagMetrics(api);

  const reader = createRegistry('reader');
  createReaderMetrics(reader);
  createFlagMetrics(reader);

  const worker = createRegistry('worker');
  createWorkerMetrics(worker);
  createFlagMetrics(worker);
  registerGateMetrics(worker, 'postgres', () =>
    Promise.resolve({ breaker: 0, authFailing: false, rateLimitedForMs: 0 }),
  );
  registerQueueMetrics(worker, [
    {
      name: 'thread-drain',
      counts: () => Promise.resolve({ waiting: 0 }),
      oldestPendingAt: () => Promise.resolve(undefined),
    },
  ]);

  const names = new Set<string>();
  const add = async (registry: Registry): Promise<void> => {
    for (const m of await registry.getMetricsAsJSON()) {
      // prom-client types `type` as a numeric enum; at run time it is the type's name.
      const type = String(m.type);
      if (type === 'histogram' || type === 'summary') {
        names.add(`${m.name}_sum`);
        names.add(`${m.name}_count`);
        if (type === 'histogram') names.add(`${m.name}_bucket`);
        else names.add(m.name);
      } else {
        names.add(m.name);
      }
    }
  };
  await Promise.all([api, reader, worker].map(add));
  return names;
}

function referencedNames(text: string): string[] {
  return [...new Set(text.match(NAME) ?? [])].sort();
}

describe('Prometheus rules and the Grafana dashboard', () => {
  let exported: Set<string>;
  let recorded: Set<string>;

  before(async () => {
    exported = await exportedNames();
    recorded = new Set(rules().flatMap((r) => (r.record ? [r.record] : [])));
  });

  /** Names in `text` that neither a process exports nor a recording rule defines. */
  function unknown(text: string): string[] {
    return referencedNames(text).filter((n) => !exported.has(n) && !recorded.has(n));
  }

  it('lists the metrics each process exports, histograms as their series', () => {
    expect(exported).to.include.members([
      'memfleet_messages_written_total',
      'memfleet_context_read_duration_seconds_bucket',
      'memfleet_context_read_duration_seconds_count',
      'memfleet_breaker_state',
      'memfleet_memory_mode',
      'memfleet_queue_jobs',
    ]);
    expect(exported).not.to.include('memfleet_context_read_duration_seconds');
  });

  it('alert and recording rules name only exported metrics and defined recording rules', () => {
    const all = rules();
    expect(all.filter((r) => r.alert)).to.have.length.above(10);
    expect(recorded.size).to.be.above(10);
    for (const rule of all) {
      expect(unknown(JSON.stringify(rule)), rule.alert ?? rule.record).to.deep.equal([]);
    }
  });

  it('every recording rule is named memfleet:<metric>:<operations>', () => {
    for (const name of recorded) expect(name).to.match(/^memfleet:[a-z0-9_]+:[a-z0-9_]+$/);
  });

  it('the rules use the metrics behind the SLOs and the gate', () => {
    const text = JSON.stringify(rules());
    for (const name of [
      'memfleet_backend_requests_total',
      'memfleet_context_read_duration_seconds_bucket',
      'memfleet_writes_skipped_total',
      'memfleet_messages_written_total',
      'memfleet_context_reads_total',
      'memfleet_breaker_state',
      'memfleet_backend_auth_failing',
      'memfleet_messages_dead_total',
      'memfleet_queue_jobs',
      'memfleet_outbox_oldest_pending_seconds',
      'memfleet_read_downgraded',
      'memfleet_memory_mode',
    ]) {
      expect(referencedNames(text), name).to.include(name);
    }
  });

  it('the rules unit tests feed only series of exported metrics', () => {
    for (const file of ruleTests()) {
      for (const test of file.tests) {
        for (const { series } of test.input_series ?? []) {
          expect(unknown(series), series).to.deep.equal([]);
          const name = /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(series)?.[0] ?? '';
          expect(exported.has(name) || name === 'up', series).to.equal(true);
        }
      }
    }
  });

  it('every alert has a severity, a summary, a description and a runbook link', () => {
    for (const rule of rules().filter((r) => r.alert)) {
      expect(rule.labels?.severity, rule.alert).to.be.oneOf(['critical', 'warning', 'info']);
      expect(rule.annotations, rule.alert).to.include.keys('summary', 'description', 'runbook_url');
      expect(rule.annotations?.runbook_url, rule.alert).to.match(/^README\.md#[a-z-]+$/);
    }
  });

  it('every alert has a unit test that fires it and one that keeps it silent', () => {
    const cases = ruleTests().flatMap((f) => f.tests.flatMap((t) => t.alert_rule_test ?? []));
    for (const rule of rules().filter((r) => r.alert)) {
      const mine = cases.filter((c) => c.alertname === rule.alert);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `${rule.alert} fires`,
      ).to.equal(true);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `${rule.alert} stays silent`,
      ).to.equal(true);
    }
  });

  it('the dashboard names only exported metrics and defined recording rules', () => {
    const text = readFileSync(DASHBOARD, 'utf8');
    const dashboard = JSON.parse(text) as { panels: { targets?: { expr: string }[] }[] };
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    expect(exprs).to.have.length.above(20);
    expect(unknown(text)).to.deep.equal([]);
    for (const name of [
      'memfleet_messages_accepted_total',
      'memfleet_queue_jobs',
      'memfleet_backend_retry_after_seconds_bucket',
      'memfleet_memory_mode',
      'memfleet_redactions_total',
    ]) {
      expect(referencedNames(text), name).to.include(name);
    }
  });
});
