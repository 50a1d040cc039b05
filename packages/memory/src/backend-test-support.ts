import { expect } from 'chai';
import { BackendError } from './backend-error.ts';
import type { MemoryMessage } from './memory-backend.ts';

/** Test support: a user message `content of <id>` with a fixed time and no metadata. */
export const testMessage = (id: string, extra: Partial<MemoryMessage> = {}): MemoryMessage => ({
  clientMessageId: id,
  role: 'user',
  content: `content of ${id}`,
  createdAt: '2026-11-21T10:00:00.000Z',
  metadata: {},
  ...extra,
});

/** Test support: the {@link BackendError} a promise rejects with; fails if it resolves. */
export async function backendRejection(promise: Promise<unknown>): Promise<BackendError> {
  try {
    await promise;
  } catch (err: unknown) {
    expect(err).to.be.instanceOf(BackendError);
    return err as BackendError;
  }
  throw new Error('expected a BackendError');
}
