import { expect } from 'chai';
import { createAuthenticator } from './auth.ts';

describe('createAuthenticator', () => {
  const auth = createAuthenticator(
    [
      { tenant: 'acme', key: 'acme-key-0123456789abcdef' },
      { tenant: 'acme', key: 'acme-key-rotated-0123456' },
      { tenant: 'globex', key: 'globex-key-0123456789abc' },
    ],
    'admin-key-0123456789abcdef',
  );

  it('maps each key to its tenant, several keys per tenant', () => {
    expect(auth.tenantOf('acme-key-0123456789abcdef')).to.equal('acme');
    expect(auth.tenantOf('acme-key-rotated-0123456')).to.equal('acme');
    expect(auth.tenantOf('globex-key-0123456789abc')).to.equal('globex');
  });

  it('knows no other key, including prefixes and the admin key', () => {
    expect(auth.tenantOf('acme-key-0123456789abcde')).to.equal(undefined);
    expect(auth.tenantOf('')).to.equal(undefined);
    expect(auth.tenantOf('admin-key-0123456789abcdef')).to.equal(undefined);
  });

  it('accepts only the admin key as admin', () => {
    expect(auth.isAdmin('admin-key-0123456789abcdef')).to.equal(true);
    expect(auth.isAdmin('acme-key-0123456789abcdef')).to.equal(false);
    expect(auth.isAdmin('admin-key-0123456789abcde')).to.equal(false);
  });
});
