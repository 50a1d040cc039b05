import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpRequestJson } from '@memfleet/testing/http-request';
import {
  startMem0Emulator,
  type Mem0Emulator,
  type StoredMemory,
} from '@memfleet/testing/mem0-emulator';
import { Fleet, KEY, waitFor } from './fleet-harness.ts';

const MEM0_KEY = 'mem0-fleet-key';
const POISON = 'poison pill';
const CHATTER = 'nothing memorable';

/** The client ids a memory came from, as the adapter wrote them into its metadata. */
const idsOf = (m: StoredMemory): unknown[] => {
  const ids = m.metadata?.client_message_ids;
  return Array.isArray(ids) ? ids : [];
};

describe('fleet on mem0: the mem0ai client against the mem0 emulator (platform API)', function () {
  this.timeout(300_000);
  const fleet = new Fleet();
  let emu: Mem0Emulator;
  let mem0Dir = '';

  before(async () => {
    mem0Dir = await mkdtemp(join(tmpdir(), 'memfleet-mem0-fleet-'));
    // Extraction as the emulator does it (one memory per message), except that content with the
    // poison pill fails on mem0's side and chatter yields no memory.
    emu = await startMem0Emulator({
      apiKeys: [MEM0_KEY],
      eventLagMs: 50,
      outcome: (payload) => {
        const text = JSON.stringify(payload.messages);
        if (text.includes(POISON)) throw new Error('LLM provider refused the content');
        return text.includes(CHATTER) ? 'empty' : 'succeeded';
      },
    });
    await fleet.start(
      {
        MEMORY_BACKEND: 'mem0',
        MEM0_API_URL: emu.url,
        MEM0_API_KEY: MEM0_KEY,
        MEM0_API_STYLE: 'platform',
        MEM0_DIR: mem0Dir,
        MEM0_EVENT_TIMEOUT_MS: '10000',
        WORKER_CONCURRENCY: '8',
        WORKER_LOCK_DURATION_MS: '10000',
        WORKER_STALLED_INTERVAL_MS: '1000',
        WORKER_BACKEND_TIMEOUT_MS: '5000',
        WORKER_BACKOFF_BASE_MS: '100',
        WORKER_BACKOFF_MAX_MS: '1000',
        WORKER_SWEEP_INTERVAL_MS: '1000',
      },
      2,
    );
    await fleet.addReader({ READ_BUDGET_MS: '1000' });
  });
  after(async () => {
    await fleet.stop();
    await emu.close();
    await rm(mem0Dir, { recursive: true, force: true });
  });

  /** The client ids stored for a thread, in mem0's order, one entry per memory. */
  const inMem0 = (threadId: string): unknown[] =>
    emu.memories({ run_id: `acme:${threadId}` }).map((m) => m.memory);

  it('writes 20 threads x 30 messages once each, in order, in batches, each only after its event SUCCEEDED', async () => {
    const expected = new Map<string, string[]>();
    await Promise.all(
      Array.from({ length: 20 }, async (_, t) => {
        const threadId = `load-${t}`;
        const ids = Array.from({ length: 30 }, (_, n) => `${threadId}-${n}`);
        expected.set(threadId, ids);
        // Three requests per thread, so batches form behind earlier writes.
        for (let part = 0; part < 3; part++) {
          const slice = ids.slice(part * 10, part * 10 + 10);
          const res = await fleet.post(
            threadId,
            slice.map((id) => ({ client_message_id: id, role: 'user', content: id })),
          );
          expect(res.status).to.equal(202);
        }
      }),
    );
    await waitFor(
      '600 messages written',
      async () => (await fleet.ledgerCount('written', 'load-')) === 600,
      120_000,
    );

    for (const [threadId, ids] of expected) {
      expect(inMem0(threadId), threadId).to.deep.equal(ids);
      const tagged = emu.memories({ run_id: `acme:${threadId}` }).flatMap(idsOf);
      expect(new Set(tagged).size, `${threadId} ids`).to.equal(30);
      expect(emu.memories({ run_id: `acme:${threadId}` })[0]?.user_id).to.equal(
        `acme:user-of-${threadId}`,
      );
    }
    expect(
      emu.memories({ user_id: '*' }).filter((m) => String(m.run_id).includes(':load-')),
    ).to.have.length(600);
    const adds = emu.events().filter((e) => e.event_type === 'ADD');
    expect(adds.every((e) => e.status === 'SUCCEEDED')).to.equal(true);
    expect(adds.length).to.be.below(600);
    const sizes = adds.map((e) =>
      Array.isArray(e.payload.messages) ? e.payload.messages.length : 0,
    );
    expect(sizes.reduce((a, b) => a + b, 0)).to.equal(600);
    expect(Math.max(...sizes)).to.be.greaterThan(1);
    expect(await fleet.status('load-7-29')).to.equal('written');
    expect(await fleet.ledgerCount('dead')).to.equal(0);
  });

  it("dead-letters the message whose event FAILED, with mem0's reason; its thread goes on in order", async () => {
    const ids = ['fail-0', 'fail-1', 'fail-2', 'fail-3', 'fail-4'];
    const res = await fleet.post(
      'fail',
      ids.map((id) => ({
        client_message_id: id,
        role: 'user',
        content: id === 'fail-2' ? `${id} ${POISON}` : id,
      })),
    );
    expect(res.status).to.equal(202);
    await waitFor('the poisoned thread settled', async () => {
      const statuses = await Promise.all(ids.map((id) => fleet.status(id)));
      return statuses.every((s) => s === 'written' || s === 'dead');
    });
    const poisoned = await fleet.statusOf('fail-2');
    expect(poisoned.status).to.equal('dead');
    expect(poisoned.error).to.match(
      /mem0 event .* FAILED for message fail-2: LLM provider refused the content/,
    );
    expect(inMem0('fail')).to.deep.equal(['fail-0', 'fail-1', 'fail-3', 'fail-4']);
    for (const id of ['fail-0', 'fail-1', 'fail-3', 'fail-4']) {
      expect(await fleet.status(id)).to.equal('written');
    }
  });

  it('never reports a SUCCEEDED event that stored nothing as written', async () => {
    const res = await fleet.post('chat', [
      { client_message_id: 'chat-0', role: 'user', content: `hi, ${CHATTER}` },
    ]);
    expect(res.status).to.equal(202);
    await waitFor('the chatter settled', async () => (await fleet.status('chat-0')) === 'dead');
    expect((await fleet.statusOf('chat-0')).error).to.match(/SUCCEEDED but stored no memory/);
  });

  it('waits out a slow event (3 s) and ends written, sent once', async () => {
    emu.setEventLagMs(3000);
    try {
      const res = await fleet.post('slow', [
        { client_message_id: 'slow-0', role: 'user', content: 'slow-0' },
        { client_message_id: 'slow-1', role: 'assistant', content: 'slow-1' },
      ]);
      expect(res.status).to.equal(202);
      await waitFor(
        'the slow batch written',
        async () => (await fleet.status('slow-1')) === 'written',
        30_000,
      );
    } finally {
      emu.setEventLagMs(50);
    }
    const slowAdds = emu
      .events()
      .filter((e) => e.event_type === 'ADD' && e.payload.run_id === 'acme:slow');
    expect(slowAdds).to.have.length(1);
    const [event] = slowAdds;
    expect(event?.status).to.equal('SUCCEEDED');
    expect(
      Date.parse(event?.completed_at ?? '') - Date.parse(event?.created_at ?? ''),
    ).to.be.at.least(2900);
    expect(inMem0('slow')).to.deep.equal(['slow-0', 'slow-1']);
    expect(await fleet.status('slow-0')).to.equal('written');
  });

  it("reads a thread's context back from mem0's memories", async () => {
    const res = await httpRequestJson(
      `${fleet.readerUrl}/v1/threads/load-3/context?user_id=user-of-load-3`,
      { headers: { authorization: `Bearer ${KEY}` } },
    );
    expect(res.status).to.equal(200);
    const body = res.json as {
      used: boolean;
      source: string;
      context: string;
      messages: unknown[];
    };
    expect(body).to.include({ used: true, source: 'mem0' });
    expect(body.context).to.include('- load-3-29');
    expect(body.messages.length).to.be.greaterThan(0);
  });

  it('erases a user from mem0 on DELETE /v1/users/{id}, and nobody else', async () => {
    await fleet.post(
      'era-1',
      [{ client_message_id: 'era-1-0', role: 'user', content: 'era one' }],
      'eraser',
    );
    await fleet.post(
      'era-2',
      [{ client_message_id: 'era-2-0', role: 'user', content: 'era two' }],
      'keeper',
    );
    await waitFor(
      'both written',
      async () =>
        (await fleet.status('era-1-0')) === 'written' &&
        (await fleet.status('era-2-0')) === 'written',
    );
    const res = await httpRequestJson(`${fleet.apiUrl}/v1/users/eraser`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(res.status).to.equal(202);
    await waitFor(
      'mem0 has nothing of the erased user',
      async () =>
        emu.memories({ user_id: 'acme:eraser' }).length === 0 &&
        (await fleet.status('era-1-0')) === undefined,
    );
    expect(emu.memories({ user_id: 'acme:keeper' }).map((m) => m.memory)).to.deep.equal([
      'era two',
    ]);
  });
});
