import { expect } from 'chai';
import pg from 'pg';
import { migrate } from '@memfleet/db/migrate';
import { createTestDatabase } from '@memfleet/testing/fixtures';
import { BackendError } from './backend-error.ts';
import { describeBackendContract } from './backend-contract.ts';
import { createPostgresBackend } from './postgres-backend.ts';

async function subject(maxBatchSize?: number) {
  const db = await createTestDatabase();
  await migrate(db.url);
  const pool = new pg.Pool({ connectionString: db.url, max: 3 });
  return {
    pool,
    backend: createPostgresBackend(pool, maxBatchSize === undefined ? {} : { maxBatchSize }),
    async dispose() {
      await pool.end();
      await db.drop();
    },
  };
}

describeBackendContract('postgres', () => subject());

describe('postgres backend specifics', () => {
  it('stores a resent message once (idempotent per tenant and client message id)', async () => {
    const s = await subject();
    try {
      const ref = { tenant: 'acme', userId: 'u1', threadId: 't1' };
      await s.backend.ensureUser(ref);
      await s.backend.ensureThread(ref);
      const m = {
        clientMessageId: 'a',
        role: 'user' as const,
        content: 'x',
        createdAt: new Date().toISOString(),
        metadata: {},
      };
      await s.backend.addMessages(ref, [m]);
      await s.backend.addMessages(ref, [m, { ...m, clientMessageId: 'b' }]);
      const rows = await s.pool.query('SELECT client_message_id FROM memory_messages ORDER BY id');
      expect(
        rows.rows.map((r: { client_message_id: string }) => r.client_message_id),
      ).to.deep.equal(['a', 'b']);
    } finally {
      await s.dispose();
    }
  });

  it('classifies rejected content as permanent and a thread of another user as permanent', async () => {
    const s = await subject();
    try {
      const ref = { tenant: 'acme', userId: 'u1', threadId: 't1' };
      await s.backend.ensureUser(ref);
      await s.backend.ensureThread(ref);
      const bad = {
        clientMessageId: 'a',
        role: 'user' as const,
        content: 'nul \u0000',
        createdAt: new Date().toISOString(),
        metadata: {},
      };
      const errors: unknown[] = [];
      await s.backend.addMessages(ref, [bad]).catch((err: unknown) => errors.push(err));
      await s.backend.ensureUser({ tenant: 'acme', userId: 'u2' });
      await s.backend
        .ensureThread({ tenant: 'acme', userId: 'u2', threadId: 't1' })
        .catch((err: unknown) => errors.push(err));
      expect(errors).to.have.length(2);
      for (const err of errors) {
        expect(err).to.be.instanceOf(BackendError);
        expect((err as BackendError).kind).to.equal('permanent');
      }
    } finally {
      await s.dispose();
    }
  });
});
