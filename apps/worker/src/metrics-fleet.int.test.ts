import { expect } from 'chai';
import { promSample } from '@memfleet/testing/prom-sample';
import { httpRequestJson } from '@memfleet/testing/http-request';
import { startZepEmulator, type ZepEmulator } from '@memfleet/testing/zep-emulator';
import { Fleet, KEY, waitFor } from './fleet-harness.ts';
import { ZEP_KEY, zepEnv } from './zep-fleet-env.ts';

const addCall = /^\/threads\/[^/]+\/messages$/;

describe('metrics: counters move as documented (fleet on the Zep emulator)', function () {
  this.timeout(180_000);
  const fleet = new Fleet();
  let emu: ZepEmulator;

  before(async () => {
    emu = await startZepEmulator({ apiKeys: [ZEP_KEY] });
    // One worker, so one process's counters see every write.
    await fleet.start(zepEnv(emu, { WORKER_BREAKER_FAILURES: '50' }), 1);
    await fleet.addReader();
  });
  after(async () => {
    await fleet.stop();
    await emu.close();
  });
  afterEach(() => {
    emu.clearFaults();
  });

  const worker = async () => fleet.metricsText(fleet.workers[0] ?? fleet.api);
  const zep = { backend: 'zep' };

  async function send(threadId: string, ids: string[], content = (id: string) => id) {
    const res = await fleet.post(
      threadId,
      ids.map((id) => ({ client_message_id: id, role: 'user', content: content(id) })),
    );
    expect(res.status).to.equal(202);
    await waitFor(`${threadId} written`, async () => {
      const statuses = await Promise.all(ids.map((id) => fleet.status(id)));
      return statuses.every((s) => s === 'written');
    });
  }

  it('success: accepted, redacted, written, batched, timed', async () => {
    const api0 = await fleet.apiMetricsText();
    const w0 = await worker();
    await send('ok', ['ok-0', 'ok-1', 'ok-2'], (id) => `${id}: write to ann@example.com`);
    const api1 = await fleet.apiMetricsText();
    const w1 = await worker();
    const delta = (a: string, b: string, name: string, labels?: Record<string, string>) =>
      promSample(b, name, labels) - promSample(a, name, labels);
    expect(delta(api0, api1, 'memfleet_messages_accepted_total', { outcome: 'queued' })).to.equal(
      3,
    );
    expect(delta(api0, api1, 'memfleet_redactions_total', { type: 'email' })).to.equal(3);
    expect(delta(w0, w1, 'memfleet_messages_written_total', zep)).to.equal(3);
    expect(delta(w0, w1, 'memfleet_batch_size_messages_sum', zep)).to.equal(3);
    expect(delta(w0, w1, 'memfleet_enqueue_to_written_seconds_count', zep)).to.equal(3);
    for (const op of ['ensure_user', 'ensure_thread', 'add_messages']) {
      expect(
        delta(w0, w1, 'memfleet_backend_requests_total', { ...zep, op, outcome: 'ok' }),
        op,
      ).to.be.at.least(1);
      expect(
        delta(w0, w1, 'memfleet_backend_request_duration_seconds_count', { ...zep, op }),
        op,
      ).to.be.at.least(1);
    }
    expect(
      promSample(w1, 'memfleet_queue_jobs', { queue: 'thread-drain', state: 'failed' }),
    ).to.equal(0);
    expect(
      promSample(w1, 'memfleet_outbox_oldest_pending_seconds', { queue: 'thread-drain' }),
    ).to.equal(0);
    expect(promSample(w1, 'memfleet_breaker_state', zep)).to.equal(0);

    // One structured line per batch, with the job, thread and tenant.
    const batches = (fleet.workers[0]?.lines() ?? [])
      .filter((l) => l.includes('"message":"batch written"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((b) => b.thread === 'ok');
    expect(batches.length).to.be.at.least(1);
    for (const b of batches) {
      expect(b).to.include({ tenant: 'acme', backend: 'zep', attempt: 1, breaker: 'closed' });
      expect(b).to.have.property('retry_after', null);
      expect(b.jobId).to.be.a('string');
      expect(b.write_ms).to.be.a('number');
    }
    expect(batches.reduce((n, b) => n + Number(b.n), 0)).to.equal(3);
  });

  it('a 5xx burst: transient failures counted per op, then written once', async () => {
    const w0 = await worker();
    emu.inject({ kind: 'status', status: 503, times: 3, match: { method: 'POST', path: addCall } });
    await send('burst', ['burst-0']);
    const w1 = await worker();
    const failed =
      promSample(w1, 'memfleet_backend_requests_total', {
        ...zep,
        op: 'add_messages',
        outcome: 'transient',
      }) -
      promSample(w0, 'memfleet_backend_requests_total', {
        ...zep,
        op: 'add_messages',
        outcome: 'transient',
      });
    expect(failed).to.equal(3);
    expect(
      promSample(w1, 'memfleet_messages_written_total', zep) -
        promSample(w0, 'memfleet_messages_written_total', zep),
    ).to.equal(1);
    // Retries after the uncertain 503s asked Zep first.
    expect(
      promSample(w1, 'memfleet_backend_requests_total', {
        ...zep,
        op: 'find_written',
        outcome: 'ok',
      }) -
        promSample(w0, 'memfleet_backend_requests_total', {
          ...zep,
          op: 'find_written',
          outcome: 'ok',
        }),
    ).to.be.at.least(1);
    expect(emu.threadMessages('acme:burst')).to.have.length(1);
  });

  it('a 429: rate limited, the Retry-After pause observed, messages held back, not failed', async () => {
    const w0 = await worker();
    emu.inject({ kind: 'rate_limit', retryAfterS: 1, match: { method: 'POST', path: addCall } });
    await send('limited', ['limited-0', 'limited-1']);
    const w1 = await worker();
    const d = (name: string, labels: Record<string, string>) =>
      promSample(w1, name, labels) - promSample(w0, name, labels);
    expect(d('memfleet_backend_rate_limited_total', zep)).to.equal(1);
    expect(d('memfleet_backend_retry_after_seconds_count', zep)).to.equal(1);
    expect(d('memfleet_backend_retry_after_seconds_sum', zep)).to.be.closeTo(1, 0.01);
    expect(d('memfleet_writes_skipped_total', { ...zep, reason: 'rate_limited' })).to.equal(2);
    expect(d('memfleet_drains_paused_total', { ...zep, reason: 'rate_limited' })).to.equal(1);
    expect(
      d('memfleet_backend_requests_total', { ...zep, op: 'add_messages', outcome: 'rate_limited' }),
    ).to.equal(1);
    expect(d('memfleet_messages_dead_total', zep)).to.equal(0);
    const held = (fleet.workers[0]?.lines() ?? [])
      .filter((l) => l.includes('"message":"batch held"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((b) => b.thread === 'limited');
    expect(held).to.have.length(1);
    expect(held[0]).to.include({ reason: 'rate_limited', retry_after: 1000, n: 2 });
  });

  it('a timeout read: the reader answers the fallback and counts it by reason', async () => {
    const r0 = await fleet.readerMetricsText();
    emu.inject({ kind: 'delay', ms: 5000, times: Infinity, match: { method: 'GET' } });
    const res = await httpRequestJson(
      `${fleet.readerUrl}/v1/threads/ok/context?user_id=user-of-ok`,
      {
        headers: { authorization: `Bearer ${KEY}` },
      },
    );
    expect(res.json).to.deep.include({ used: false, source: 'fallback', reason: 'timeout' });
    const r1 = await fleet.readerMetricsText();
    const d = (name: string, labels: Record<string, string>) =>
      promSample(r1, name, labels) - promSample(r0, name, labels);
    expect(d('memfleet_context_reads_total', { source: 'fallback', reason: 'timeout' })).to.equal(
      1,
    );
    expect(d('memfleet_context_read_duration_seconds_count', { source: 'fallback' })).to.equal(1);
    expect(promSample(r1, 'memfleet_memory_mode', { mode: 'read_write' })).to.equal(1);
  });
});
