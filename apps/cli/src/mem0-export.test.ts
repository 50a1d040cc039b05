import { expect } from 'chai';
import { ExportFormatError, exportRecords, planMigration } from './mem0-export.ts';

const memory = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  memory: `memory ${id}`,
  user_id: 'u1',
  run_id: 'r1',
  metadata: null,
  created_at: '2024-07-26T10:00:00.000000-07:00',
  ...extra,
});

describe('mem0 export: format', () => {
  it('takes a list of memories or an object with results, and refuses anything else', () => {
    const list = [memory('a')];
    expect(exportRecords(list)).to.equal(list);
    expect(exportRecords({ count: 1, next: null, results: list })).to.equal(list);
    for (const bad of [{}, { results: 'x' }, 'text', null, 3]) {
      expect(() => exportRecords(bad)).to.throw(ExportFormatError, /array of mem0 memories/);
    }
  });
});

describe('mem0 export: planMigration', () => {
  it('maps users, runs to threads and memories to messages with deterministic ids', () => {
    const plan = planMigration(
      [
        memory('a', { metadata: { topic: 'food' } }),
        memory('b', { role: 'assistant', session_id: 'r1', run_id: undefined }),
        memory('c', { run_id: null, user_id: 'u2', metadata: { role: 'system' } }),
      ],
      1000,
    );
    expect(plan).to.deep.include({ users: 2, messages: 3, duplicates: 0, rejected: [] });
    expect(plan.threads).to.deep.equal([
      {
        threadId: 'mem0-r1',
        userId: 'u1',
        unique: 2,
        messages: [
          {
            client_message_id: 'mem0-a',
            role: 'user',
            content: 'memory a',
            created_at: '2024-07-26T10:00:00.000000-07:00',
            metadata: { topic: 'food', mem0_memory_id: 'a' },
          },
          {
            client_message_id: 'mem0-b',
            role: 'assistant',
            content: 'memory b',
            created_at: '2024-07-26T10:00:00.000000-07:00',
            metadata: { mem0_memory_id: 'b' },
          },
        ],
      },
      {
        // No run: the user's own thread.
        threadId: 'mem0-u2',
        userId: 'u2',
        unique: 1,
        messages: [
          {
            client_message_id: 'mem0-c',
            role: 'system',
            content: 'memory c',
            created_at: '2024-07-26T10:00:00.000000-07:00',
            metadata: { role: 'system', mem0_memory_id: 'c' },
          },
        ],
      },
    ]);
  });

  it("accepts the mem0ai client's camelCase keys", () => {
    const plan = planMigration(
      [{ id: 'a', memory: 'm', userId: 'u1', sessionId: 's1', createdAt: '2024-01-01T00:00:00Z' }],
      100,
    );
    expect(plan.threads.map((t) => [t.threadId, t.userId])).to.deep.equal([['mem0-s1', 'u1']]);
    expect(plan.threads[0]?.messages[0]?.created_at).to.equal('2024-01-01T00:00:00Z');
  });

  it('orders each thread by created_at, then export position, across offsets', () => {
    const plan = planMigration(
      [
        memory('late', { created_at: '2024-07-26T12:00:00+02:00' }), // 10:00Z
        memory('tie-1', { created_at: '2024-07-26T09:00:00Z' }),
        memory('early', { created_at: '2024-07-26T01:00:00-05:00' }), // 06:00Z
        memory('tie-2', { created_at: '2024-07-26T09:00:00.000Z' }),
      ],
      1000,
    );
    expect(plan.threads[0]?.messages.map((m) => m.client_message_id)).to.deep.equal([
      'mem0-early',
      'mem0-tie-1',
      'mem0-tie-2',
      'mem0-late',
    ]);
  });

  it('sends repeated records after their first, counted as duplicates; a conflicting repeat is rejected', () => {
    const plan = planMigration(
      [
        memory('a'),
        memory('b', { created_at: '2024-07-27T00:00:00Z' }),
        // Same record, keys in another order.
        {
          created_at: '2024-07-26T10:00:00.000000-07:00',
          metadata: null,
          run_id: 'r1',
          user_id: 'u1',
          memory: 'memory a',
          id: 'a',
        },
        memory('b', { memory: 'changed' }),
      ],
      1000,
    );
    expect(plan.threads[0]?.messages.map((m) => m.client_message_id)).to.deep.equal([
      'mem0-a',
      'mem0-a',
      'mem0-b',
    ]);
    expect(plan).to.deep.include({ messages: 2, duplicates: 1 });
    expect(plan.threads[0]?.unique).to.equal(2);
    expect(plan.rejected).to.deep.equal([
      {
        record: 4,
        memoryId: 'b',
        reason: 'id: repeats record 2 with other content, user or run',
      },
    ]);
  });

  it('rejects what cannot be mapped, naming the field, and keeps the rest', () => {
    const plan = planMigration(
      [
        memory('ok'),
        memory('no-user', { user_id: undefined }),
        memory('empty', { memory: '   ' }),
        memory('robot', { role: 'robot' }),
        memory('meta-role', { metadata: { role: 'narrator' } }),
        memory('no-date', { created_at: undefined }),
        memory('naive-date', { created_at: '2024-07-26T10:00:00' }),
        memory('long', { memory: 'x'.repeat(101) }),
        memory('bad-meta', { metadata: ['x'] }),
        memory('bad-run', { run_id: 7 }),
        { memory: 'no id', user_id: 'u1' },
        'not an object',
      ],
      100,
    );
    expect(plan.messages).to.equal(1);
    expect(plan.rejected.map((r) => [r.record, r.memoryId, r.reason])).to.deep.equal([
      [2, 'no-user', 'user_id: required (a memory without a user cannot be migrated)'],
      [3, 'empty', 'memory: must not be empty'],
      [4, 'robot', 'role: "robot" is not one of user, assistant, system, tool'],
      [5, 'meta-role', 'role: "narrator" is not one of user, assistant, system, tool'],
      [6, 'no-date', 'created_at: required'],
      [7, 'naive-date', 'created_at: must be an ISO-8601 date-time'],
      [8, 'long', 'memory: must be at most 100 characters'],
      [9, 'bad-meta', 'metadata: must be an object'],
      [10, 'bad-run', 'run_id: must be a non-empty string'],
      [11, undefined, 'id: required'],
      [12, undefined, 'not an object'],
    ]);
  });

  it('rejects the memories of a second user in a run; the run belongs to its first message', () => {
    const plan = planMigration(
      [
        memory('b1', { user_id: 'bob', created_at: '2024-07-26T11:00:00Z' }),
        memory('a1', { user_id: 'ann', created_at: '2024-07-26T10:00:00Z' }),
        memory('b1', { user_id: 'bob', created_at: '2024-07-26T11:00:00Z' }),
        memory('a2', { user_id: 'ann', created_at: '2024-07-26T12:00:00Z' }),
      ],
      1000,
    );
    expect(plan.threads).to.have.length(1);
    expect(plan.threads[0]).to.include({ threadId: 'mem0-r1', userId: 'ann', unique: 2 });
    expect(plan).to.deep.include({ users: 1, messages: 2, duplicates: 0 });
    expect(plan.rejected.map((r) => [r.record, r.reason])).to.deep.equal([
      [1, 'run_id: run r1 belongs to user ann, not bob'],
      [3, 'run_id: run r1 belongs to user ann, not bob'],
    ]);
  });

  it('rejects ids that cannot name a thread', () => {
    const plan = planMigration(
      [memory('a', { run_id: 'r'.repeat(300) }), memory('b', { user_id: 'u\n1' })],
      1000,
    );
    expect(plan.threads).to.deep.equal([]);
    expect(plan.rejected.map((r) => r.reason)).to.deep.equal([
      `run_id: thread id mem0-${'r'.repeat(35)}…: must be at most 256 characters`,
      'user_id: must not contain control characters',
    ]);
  });
});
