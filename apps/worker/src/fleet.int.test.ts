import { expect } from 'chai';
import { httpRequestJson } from '@memfleet/testing/http-request';
import type { AppProcess } from '@memfleet/testing/app-process';
import { Fleet, KEY, waitFor } from './fleet-harness.ts';

const text = (thread: number, n: number) => `message ${n} of thread ${thread}`;

describe('fleet: api + worker processes (real Redis and Postgres)', function () {
  this.timeout(240_000);

  describe('order, batching and PII under load', () => {
    const fleet = new Fleet();
    before(() => fleet.start({ WORKER_CONCURRENCY: '8' }, 2));
    after(() => fleet.stop());

    it('writes 50 threads x 40 messages from 50 concurrent clients in accept order, once each, in batches', async () => {
      const sizes = [1, 3, 5, 2, 4];
      const expected = new Map<string, string[]>();
      await Promise.all(
        Array.from({ length: 50 }, async (_, t) => {
          const threadId = `thread-${t}`;
          const ids: string[] = [];
          let n = 0;
          let chunk = 0;
          while (n < 40) {
            const size = Math.min(sizes[chunk++ % sizes.length] ?? 1, 40 - n);
            const messages = Array.from({ length: size }, (_, k) => ({
              client_message_id: `t${t}-m${n + k}`,
              role: n + k === 0 ? 'system' : (n + k) % 2 === 0 ? 'assistant' : 'user',
              content: text(t, n + k),
            }));
            const res = await fleet.post(threadId, messages);
            expect(res.status).to.equal(202);
            ids.push(...messages.map((m) => m.client_message_id));
            n += size;
          }
          expected.set(threadId, ids);
        }),
      );
      await waitFor(
        '2000 messages written',
        async () => (await fleet.ledgerCount('written')) === 2000,
        120_000,
      );

      const stored = await fleet.storedByThread();
      expect(stored.size).to.equal(50);
      for (const [threadId, ids] of expected) {
        expect(stored.get(threadId), threadId).to.deep.equal(ids);
      }
      expect(await fleet.ledgerCount('dead')).to.equal(0);

      let count = 0;
      let sum = 0;
      let single = 0;
      for (const worker of fleet.workers) {
        const res = await httpRequestJson(`http://127.0.0.1:${fleet.metricsPort(worker)}/metrics`);
        const body = res.text;
        const value = (re: RegExp) => Number(re.exec(body)?.[1] ?? 0);
        count += value(/^memfleet_batch_size_messages_count\{[^}]*\} (\d+)/m);
        sum += value(/^memfleet_batch_size_messages_sum\{[^}]*\} (\d+)/m);
        single += value(/^memfleet_batch_size_messages_bucket\{le="1",[^}]*\} (\d+)/m);
      }
      expect(sum).to.equal(2000);
      expect(count).to.be.below(2000);
      expect(count - single, 'batches of more than one message').to.be.above(0);
    });

    it('stores PII redacted and leaves none in Redis or the logs', async () => {
      const email = 'jane.doe@example.com';
      const phone = '+1 415-555-2671';
      const card = '4111 1111 1111 1111';
      const res = await fleet.post('pii-thread', [
        {
          client_message_id: 'pii-1',
          role: 'user',
          content: `mail ${email}, call ${phone}, card ${card}`,
          metadata: { note: `backup ${email}` },
        },
      ]);
      expect(res.status).to.equal(202);
      await waitFor(
        'the PII message written',
        async () => (await fleet.status('pii-1')) === 'written',
        30_000,
      );

      const row = await fleet.pg.query<{ content: string; metadata: { note: string } }>(
        "SELECT content, metadata FROM memory_messages WHERE client_message_id = 'pii-1'",
      );
      expect(row.rows[0]?.content).to.equal('mail [EMAIL], call [PHONE], card [CARD]');
      expect(row.rows[0]?.metadata.note).to.equal('backup [EMAIL]');

      const needles = [email, phone, card, '4111111111111111', '4155552671'];
      const logs = [...fleet.api.lines(), ...fleet.workers.flatMap((w) => w.lines())].join('\n');
      const redisText = await fleet.redisText();
      // The scan did see this test's records (the body itself leaves Redis once written).
      expect(redisText).to.include(`${fleet.prefix}:msg:acme:pii-1`);
      for (const needle of needles) {
        expect(redisText.includes(needle), `Redis holds ${needle}`).to.equal(false);
        expect(logs.includes(needle), `logs hold ${needle}`).to.equal(false);
      }
    });
  });

  describe('erasure', () => {
    const fleet = new Fleet();
    before(() => fleet.start({ WORKER_CONCURRENCY: '4', FLAGS_REFRESH_MS: '200' }, 1));
    after(() => fleet.stop());

    const msgs = (ids: string[], text: (id: string) => string) =>
      ids.map((id) => ({ client_message_id: id, role: 'user', content: text(id) }));
    const rows = async (sql: string, userId: string) =>
      Number((await fleet.pg.query<{ n: string }>(sql, [userId])).rows[0]?.n ?? -1);

    it('DELETE /v1/users/{id} leaves nothing of the user in the backend, the ledger or Redis; others keep theirs', async () => {
      const mine = (id: string) => `secret of erasable-user ${id}`;
      expect(
        (await fleet.post('era-a', msgs(['era-a1', 'era-a2', 'era-a3'], mine), 'erasable-user'))
          .status,
      ).to.equal(202);
      expect(
        (await fleet.post('era-b', msgs(['era-b1', 'era-b2'], mine), 'erasable-user')).status,
      ).to.equal(202);
      expect(
        (
          await fleet.post(
            'era-c',
            msgs(['era-c1', 'era-c2'], (id) => `kept ${id}`),
            'kept-user',
          )
        ).status,
      ).to.equal(202);
      await waitFor(
        '7 messages written',
        async () => (await fleet.ledgerCount('written', 'era-')) === 7,
        30_000,
      );
      // One more message is still queued when the erasure comes: writes are off.
      expect((await fleet.adminFlags({ mode: 'off' })).status).to.equal(200);
      const worker = fleet.workers[0] as AppProcess;
      await waitFor(
        'the worker to see mode off',
        async () =>
          /^memfleet_memory_mode\{mode="off",[^}]*\} 1$/m.test(await fleet.metricsText(worker)),
        10_000,
      );
      expect((await fleet.post('era-a', msgs(['era-a4'], mine), 'erasable-user')).status).to.equal(
        202,
      );
      expect(await fleet.status('era-a4')).to.equal('queued');

      const res = await httpRequestJson(`${fleet.apiUrl}/v1/users/erasable-user`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${KEY}` },
      });
      expect(res.status).to.equal(202);
      expect(res.json).to.deep.equal({ user_id: 'erasable-user', status: 'erasing' });
      await waitFor(
        'the erasure',
        async () =>
          (await rows('SELECT count(*) AS n FROM ledger WHERE user_id = $1', 'erasable-user')) ===
            0 && (await fleet.statusOf('era-a4')).status === undefined,
        30_000,
      );
      await fleet.adminFlags({ mode: null });

      for (const table of ['memory_users', 'memory_threads', 'ledger']) {
        expect(
          await rows(`SELECT count(*) AS n FROM ${table} WHERE user_id = $1`, 'erasable-user'),
          table,
        ).to.equal(0);
      }
      expect(
        await rows(
          "SELECT count(*) AS n FROM memory_messages WHERE content LIKE '%' || $1 || '%'",
          'erasable-user',
        ),
      ).to.equal(0);
      for (const id of ['era-a1', 'era-b2', 'era-a4']) {
        expect((await fleet.statusOf(id)).status, id).to.equal(undefined);
      }
      const redisText = await fleet.redisText(`${fleet.prefix}*`);
      for (const needle of ['erasable-user', 'era-a', 'era-b']) {
        expect(redisText.includes(needle), `Redis holds ${needle}`).to.equal(false);
      }
      // The other user is untouched.
      expect(await fleet.status('era-c1')).to.equal('written');
      expect(
        await rows('SELECT count(*) AS n FROM memory_messages WHERE thread_id = $1', 'era-c'),
      ).to.equal(2);
      expect(redisText.includes('era-c')).to.equal(true);
      // A second DELETE of the same user is accepted and changes nothing.
      const again = await httpRequestJson(`${fleet.apiUrl}/v1/users/erasable-user`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${KEY}` },
      });
      expect(again.status).to.equal(202);
    });

    it('names the field of a bad user id and needs a key', async () => {
      const noKey = await httpRequestJson(`${fleet.apiUrl}/v1/users/u1`, { method: 'DELETE' });
      expect(noKey.status).to.equal(401);
      const long = await httpRequestJson(`${fleet.apiUrl}/v1/users/${'x'.repeat(300)}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${KEY}` },
      });
      expect(long.status).to.equal(400);
      expect(JSON.stringify(long.json)).to.include('user_id: must be at most 256 characters');
    });
  });

  describe('crash', () => {
    const fleet = new Fleet();
    const quick = {
      WORKER_CONCURRENCY: '8',
      WORKER_LOCK_DURATION_MS: '2000',
      WORKER_STALLED_INTERVAL_MS: '1000',
      WORKER_BACKEND_TIMEOUT_MS: '1500',
      WORKER_BACKOFF_BASE_MS: '100',
      WORKER_BACKOFF_MAX_MS: '1000',
      WORKER_SWEEP_INTERVAL_MS: '1000',
    };
    before(() => fleet.start(quick, 0));
    after(() => fleet.stop());

    it('writes every message exactly once after kill -9 of a worker holding batches', async () => {
      const victim = await fleet.addWorker('victim', {
        ...quick,
        DATABASE_URL: fleet.databaseUrlNamed('victim'),
      });
      // Hold every insert into the store, so the victim's drains block mid-write with their batches.
      const release = await fleet.blockStore();
      let expected = new Map<string, string[]>();
      try {
        expected = await fleet.postThreads('crash', 10, 5);
        await fleet.waitBlockedInsert('victim');
        await victim.kill9();
        expect(await victim.waitForExit(10_000)).to.equal(null);
      } finally {
        await release();
      }
      const survivor = await fleet.addWorker('survivor', quick);
      try {
        await waitFor(
          '50 messages written',
          async () => (await fleet.ledgerCount('written', 'crash-')) === 50,
          60_000,
        );
      } finally {
        await survivor.stop(15_000);
      }
      await fleet.expectStoredInOrder(expected);
      const total = await fleet.pg.query<{ n: string }>(
        "SELECT count(*) AS n FROM memory_messages WHERE thread_id LIKE 'crash-%'",
      );
      expect(Number(total.rows[0]?.n)).to.equal(50);
    });

    it('on SIGTERM finishes the batch in flight, hands the rest back and exits 0', async () => {
      const leaving = await fleet.addWorker('leaving', {
        ...quick,
        DATABASE_URL: fleet.databaseUrlNamed('leaving'),
      });
      const release = await fleet.blockStore();
      let expected = new Map<string, string[]>();
      try {
        expected = await fleet.postThreads('term', 5, 4);
        await fleet.waitBlockedInsert('leaving');
        leaving.signal('SIGTERM');
      } finally {
        await release();
      }
      expect(await leaving.waitForExit(20_000)).to.equal(0);
      expect(leaving.lines().some((l) => l.includes('"message":"worker stopped"'))).to.equal(true);
      const survivor = await fleet.addWorker('survivor-2', quick);
      try {
        await waitFor(
          '20 messages written',
          async () => (await fleet.ledgerCount('written', 'term-')) === 20,
          60_000,
        );
      } finally {
        await survivor.stop(15_000);
      }
      await fleet.expectStoredInOrder(expected);
    });
  });
});
