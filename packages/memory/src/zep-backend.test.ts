import { ZepError } from '@getzep/zep-cloud';
import { expect } from 'chai';
import { BackendError } from './backend-error.ts';
import { retryAfterMs } from './retry-after.ts';
import { classifyZepError, zepThreadId, zepUserId } from './zep-backend.ts';

const raw = (status: number, headers: Record<string, string> = {}) => ({
  headers: new Headers(headers),
  redirected: false,
  status,
  statusText: '',
  type: 'basic' as const,
  url: 'http://127.0.0.1/api/v2/threads/t/messages',
});

describe('zep backend: error classification', () => {
  const kind = (err: unknown) => classifyZepError(err, 'thread.addMessages').kind;

  it('treats the SDK timeout, an abort and a dropped connection as transient (uncertain)', () => {
    expect(kind(new ZepError({ message: '"timeout"' }))).to.equal('transient');
    expect(kind(new ZepError({ message: 'The user aborted a request' }))).to.equal('transient');
    expect(kind(new ZepError({ message: 'fetch failed' }))).to.equal('transient');
    expect(classifyZepError(new ZepError({ message: '"timeout"' }), 'x').message).to.equal(
      'zep x timed out',
    );
  });

  it('treats 408 and 5xx as transient, 401/403 as auth, other 4xx as permanent with the body', () => {
    for (const status of [408, 500, 502, 503, 504]) {
      expect(kind(new ZepError({ statusCode: status, body: {} })), String(status)).to.equal(
        'transient',
      );
    }
    expect(kind(new ZepError({ statusCode: 401, body: { message: 'unauthorized' } }))).to.equal(
      'auth',
    );
    expect(kind(new ZepError({ statusCode: 403, body: {} }))).to.equal('auth');
    const rejected = classifyZepError(
      new ZepError({
        statusCode: 400,
        body: { message: 'message content exceeds 2500 characters' },
      }),
      'thread.addMessages',
    );
    expect(rejected.kind).to.equal('permanent');
    expect(rejected.message).to.equal(
      'zep thread.addMessages answered 400: message content exceeds 2500 characters',
    );
    expect(rejected.details.status).to.equal(400);
  });

  it('reads Retry-After from a 429 and keeps the plain-text body', () => {
    const err = classifyZepError(
      new ZepError({
        statusCode: 429,
        body: 'Rate limit exceeded for FREE plan',
        rawResponse: raw(429, { 'retry-after': '2' }),
      }),
      'thread.addMessages',
    );
    expect(err).to.be.instanceOf(BackendError);
    expect(err.kind).to.equal('rate_limited');
    expect(err.details.retryAfterMs).to.equal(2000);
    expect(err.message).to.include('Rate limit exceeded for FREE plan');
  });

  it('treats a local validation error of the SDK as permanent, anything unknown as transient', () => {
    const jsonError = Object.assign(new Error('messages -> [0] -> role: Expected enum.'), {
      errors: [{ path: ['messages'], message: 'Expected enum.' }],
    });
    expect(kind(jsonError)).to.equal('permanent');
    expect(kind(new TypeError('socket hang up'))).to.equal('transient');
  });
});

describe('zep backend: Retry-After', () => {
  const now = Date.parse('2026-11-21T10:00:00Z');
  it('reads seconds, an HTTP date, or falls back to X-RateLimit-Reset', () => {
    expect(retryAfterMs(new Headers({ 'retry-after': '60' }), now)).to.equal(60_000);
    expect(retryAfterMs(new Headers({ 'retry-after': '0.5' }), now)).to.equal(500);
    expect(
      retryAfterMs(new Headers({ 'retry-after': 'Sat, 21 Nov 2026 10:00:03 GMT' }), now),
    ).to.equal(3000);
    expect(
      retryAfterMs(new Headers({ 'x-ratelimit-reset': String(now / 1000 + 7) }), now),
    ).to.equal(7000);
    expect(retryAfterMs(new Headers({ 'retry-after': 'soon' }), now)).to.equal(undefined);
    expect(retryAfterMs(undefined, now)).to.equal(undefined);
  });
});

describe('zep backend: ids', () => {
  it('namespaces users and threads by tenant (Zep ids are global per project)', () => {
    const ref = { tenant: 'acme', userId: 'u1', threadId: 't1' };
    expect(zepUserId(ref)).to.equal('acme:u1');
    expect(zepThreadId(ref)).to.equal('acme:t1');
    expect(zepThreadId({ ...ref, tenant: 'globex' })).to.not.equal(zepThreadId(ref));
  });
});
