import { expect } from 'chai';
import { outboxKeys, parsePendingMember, pendingMember } from './outbox-keys.ts';

describe('outboxKeys', () => {
  const keys = outboxKeys('{memfleet}');

  it('puts every key under the hash tag', () => {
    for (const key of [
      keys.thread('acme', 't'),
      keys.outbox('acme', 't'),
      keys.lock('acme', 't'),
      keys.message('acme', 'm'),
      keys.dead('acme'),
      keys.pending(),
    ]) {
      expect(key.startsWith('{memfleet}:')).to.equal(true);
    }
  });

  it('encodes ids so separators cannot make keys collide', () => {
    expect(keys.outbox('acme', 'a:b')).to.not.equal(keys.outbox('acme:a', 'b'));
    expect(keys.message('acme', 'x:y')).to.equal('{memfleet}:msg:acme:x%3Ay');
  });

  it('round-trips pending members and rejects malformed ones', () => {
    expect(parsePendingMember(pendingMember('acme', 'a"b\\c'))).to.deep.equal({
      tenant: 'acme',
      threadId: 'a"b\\c',
    });
    expect(parsePendingMember('not json')).to.equal(undefined);
    expect(parsePendingMember('["only-one"]')).to.equal(undefined);
  });
});
