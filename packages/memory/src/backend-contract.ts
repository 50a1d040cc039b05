import { expect } from 'chai';
import type { MemoryBackend, MemoryMessage, ThreadRef } from './memory-backend.ts';

/** What a contract run needs: a fresh, empty backend per test and a way to dispose of it. */
export interface ContractSubject {
  backend: MemoryBackend;
  dispose(): Promise<void>;
}

const msg = (id: string, content = `content of ${id}`): MemoryMessage => ({
  clientMessageId: id,
  role: 'user',
  content,
  createdAt: '2026-11-21T10:00:00.000Z',
  metadata: { client_message_id: id },
});

/** What kind of store the backend is. */
export interface ContractOptions {
  /**
   * `messages` (default): the store keeps each message as sent, with its id, role and time.
   * `memories`: it keeps what it extracted from them (mem0); entries are checked by content and
   * order only, and ids through `findWritten`, which is what the fleet relies on.
   */
  keeps?: 'messages' | 'memories';
}

/**
 * The behaviour every `MemoryBackend` adapter (and every emulator behind one) must show. Call it
 * inside a test file: `describeBackendContract('postgres', async () => …)`.
 */
export function describeBackendContract(
  name: string,
  create: () => Promise<ContractSubject>,
  options: ContractOptions = {},
): void {
  const verbatim = (options.keeps ?? 'messages') === 'messages';
  const contents = (list: readonly { content: string }[]) => list.map((m) => m.content);
  describe(`MemoryBackend contract: ${name}`, () => {
    let subject: ContractSubject;
    let backend: MemoryBackend;
    const t1: ThreadRef = { tenant: 'acme', userId: 'u1', threadId: 't1' };

    beforeEach(async () => {
      subject = await create();
      backend = subject.backend;
    });
    afterEach(async () => {
      await subject.dispose();
    });

    async function ready(ref: ThreadRef): Promise<void> {
      await backend.ensureUser(ref);
      await backend.ensureThread(ref);
    }

    it('creates users and threads idempotently', async () => {
      await ready(t1);
      await ready(t1);
      expect(await backend.recentMessages(t1, 10)).to.deep.equal([]);
    });

    it('knows the threads it ensured, until their user is erased', async () => {
      const other: ThreadRef = { tenant: 'acme', userId: 'u1', threadId: 't2' };
      await ready(t1);
      expect(backend.isEnsured(t1)).to.equal(true);
      if (!verbatim) {
        // A memory store has no users or threads to create: every thread is ready.
        expect(backend.isEnsured(other)).to.equal(true);
        return;
      }
      expect(backend.isEnsured(other), 'a thread not ensured yet').to.equal(false);
      expect(backend.isEnsured({ ...t1, tenant: 'globex' }), 'another tenant').to.equal(false);
      await backend.eraseUser(t1);
      expect(backend.isEnsured(t1), 'after the erasure').to.equal(false);
      await ready(t1);
      expect(backend.isEnsured(t1)).to.equal(true);
    });

    it('keeps the order of a batch and of successive batches', async () => {
      await ready(t1);
      await backend.addMessages(t1, [msg('a'), msg('b'), msg('c')]);
      await backend.addMessages(t1, [msg('d')]);
      const recent = await backend.recentMessages(t1, 10);
      expect(contents(recent)).to.deep.equal(['a', 'b', 'c', 'd'].map((id) => `content of ${id}`));
      expect(Date.parse(recent[0]?.createdAt ?? '')).to.be.at.most(Date.now());
      if (verbatim) {
        expect(recent.map((m) => m.clientMessageId)).to.deep.equal(['a', 'b', 'c', 'd']);
        expect(recent[0]).to.include({ role: 'user', content: 'content of a' });
        expect(recent[0]?.createdAt).to.equal('2026-11-21T10:00:00.000Z');
      }
    });

    it('returns the most recent messages, oldest first', async () => {
      await ready(t1);
      await backend.addMessages(
        t1,
        ['a', 'b', 'c', 'd', 'e'].map((id) => msg(id)),
      );
      const recent = await backend.recentMessages(t1, 2);
      expect(contents(recent)).to.deep.equal(['content of d', 'content of e']);
      if (verbatim) expect(recent.map((m) => m.clientMessageId)).to.deep.equal(['d', 'e']);
    });

    it('accepts a batch of its maximum size', async () => {
      await ready(t1);
      const ids = Array.from({ length: backend.maxBatchSize }, (_, i) => `m${i}`);
      await backend.addMessages(
        t1,
        ids.map((id) => msg(id)),
      );
      expect((await backend.findWritten(t1, ids)).size).to.equal(ids.length);
    });

    it('tells which client message ids a thread already holds', async () => {
      await ready(t1);
      await backend.addMessages(t1, [msg('a'), msg('b')]);
      const found = await backend.findWritten(t1, ['a', 'b', 'zzz']);
      expect([...found].sort()).to.deep.equal(['a', 'b']);
    });

    it('keeps tenants and threads apart', async () => {
      const other: ThreadRef = { tenant: 'globex', userId: 'u1', threadId: 't1' };
      const t2: ThreadRef = { ...t1, threadId: 't2' };
      await ready(t1);
      await ready(other);
      await ready(t2);
      await backend.addMessages(t1, [msg('a')]);
      await backend.addMessages(other, [msg('b')]);
      await backend.addMessages(t2, [msg('c')]);
      expect(contents(await backend.recentMessages(other, 10))).to.deep.equal(['content of b']);
      expect([...(await backend.findWritten(t2, ['a', 'b', 'c']))]).to.deep.equal(['c']);
    });

    it('builds a context from the thread', async () => {
      await ready(t1);
      await backend.addMessages(t1, [
        msg('a', 'I like tea'),
        { ...msg('b', 'Noted'), role: 'assistant' },
      ]);
      // Backends that build context asynchronously (Zep) get a few seconds to catch up.
      const deadline = Date.now() + 5000;
      let context = await backend.getContext(t1);
      while (!context.context.includes('I like tea') && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        context = await backend.getContext(t1);
      }
      expect(context.context).to.include('I like tea');
      const alone = await backend.getContext(t1, { messages: 0 });
      expect(alone.context).to.include('I like tea');
      expect(alone.messages).to.deep.equal([]);
      expect(contents(context.messages)).to.deep.equal(['I like tea', 'Noted']);
      if (verbatim) {
        expect(context.messages.map((m) => m.clientMessageId)).to.deep.equal(['a', 'b']);
      }
    });

    it('erases a user and nobody else', async () => {
      const u2: ThreadRef = { tenant: 'acme', userId: 'u2', threadId: 't9' };
      await ready(t1);
      await ready(u2);
      await backend.addMessages(t1, [msg('a')]);
      await backend.addMessages(u2, [msg('b')]);
      await backend.eraseUser(t1);
      expect(await backend.findWritten(t1, ['a'])).to.have.property('size', 0);
      expect(await backend.findWritten(u2, ['b'])).to.have.property('size', 1);
    });
  });
}
