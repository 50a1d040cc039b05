import { spawn } from 'node:child_process';
import { expect } from 'chai';
import { httpRequestJson } from '@memfleet/testing/http-request';
import { Fleet, KEY, waitFor } from './fleet-harness.ts';

/**
 * Every process's /metrics passes Prometheus's own linter, `promtool check metrics` (Debian package
 * prometheus; the test command installs it), after traffic has filled in the labelled series.
 */

const MISSING =
  'promtool is not on PATH: install Debian package prometheus (`apt-get install prometheus`; ' +
  'the test command does it through ensure_promtool in scripts/lib/system-deps.sh)';

/** Runs promtool with `args`, `input` on stdin; its exit code and everything it printed. */
function promtool(args: string[], input = ''): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    // A promtool that is missing or exits early closes stdin; its exit says what happened.
    child.stdin.on('error', () => undefined);
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' ? new Error(MISSING) : err);
    });
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(input);
  });
}

describe('promtool check metrics: the /metrics of the API, the reader and a worker', function () {
  this.timeout(180_000);
  const fleet = new Fleet();
  let starting = false;

  before(async () => {
    const version = await promtool(['--version']);
    expect(version.code, version.output).to.equal(0);
    starting = true;
    await fleet.start({}, 1);
    await fleet.addReader();
  });
  after(async () => {
    if (starting) await fleet.stop();
  });

  before('traffic through every process', async () => {
    for (let t = 0; t < 3; t++) {
      const res = await fleet.post(`lint-${t}`, [
        { client_message_id: `lint-${t}-a`, role: 'user', content: 'mail me at jane@example.com' },
        { client_message_id: `lint-${t}-b`, role: 'assistant', content: 'call +1 415 555 2671' },
        { client_message_id: `lint-${t}-c`, role: 'user', content: 'card 4111 1111 1111 1111' },
      ]);
      expect(res.status).to.equal(202);
    }
    const again = await fleet.post('lint-0', [
      { client_message_id: 'lint-0-a', role: 'user', content: 'mail me at jane@example.com' },
    ]);
    expect(again.status).to.equal(202);
    expect((await fleet.post('lint-bad', [{ role: 'user' }])).status).to.equal(400);
    await waitFor(
      '9 messages written',
      async () => (await fleet.ledgerCount('written', 'lint-')) === 9,
      60_000,
    );
    for (let i = 0; i < 2; i++) {
      const read = await httpRequestJson(
        `${fleet.readerUrl}/v1/threads/lint-0/context?user_id=user-of-lint-0`,
        { headers: { authorization: `Bearer ${KEY}` } },
      );
      expect(read.status).to.equal(200);
    }
  });

  async function expectClean(text: string, metrics: string[]): Promise<void> {
    for (const name of metrics) expect(text).to.match(new RegExp(`^${name}(\\{| )`, 'm'));
    const lint = await promtool(['check', 'metrics'], text);
    expect(lint, 'promtool check metrics').to.deep.equal({ code: 0, output: '' });
  }

  it("the API's", async () => {
    await expectClean(await fleet.apiMetricsText(), [
      'memfleet_messages_accepted_total',
      'memfleet_redactions_total',
      'memfleet_http_request_duration_seconds_bucket',
      'memfleet_memory_mode',
    ]);
  });

  it("the reader's", async () => {
    await expectClean(await fleet.readerMetricsText(), [
      'memfleet_context_reads_total',
      'memfleet_context_read_duration_seconds_bucket',
      'memfleet_context_backend_reads_total',
      'memfleet_read_downgraded',
    ]);
  });

  it("a worker's", async () => {
    const worker = fleet.workers[0];
    if (worker === undefined) throw new Error('the fleet has no worker');
    await expectClean(await fleet.metricsText(worker), [
      'memfleet_messages_written_total',
      'memfleet_backend_requests_total',
      'memfleet_enqueue_to_written_seconds_bucket',
      'memfleet_breaker_state',
      'memfleet_queue_jobs',
      'memfleet_outbox_oldest_pending_seconds',
    ]);
  });
});
