import { expect } from 'chai';
import { keyDigest } from '@memfleet/config/api-keys';
import { createAuthenticator } from './auth.ts';

describe('createAuthenticator', () => {
  const auth = createAuthenticator(
    [
      { tenant: 'acme', digest: keyDigest('acme-key-0123456789abcdef'), scopes: ['read', 'write'] },
      { tenant: 'acme', digest: keyDigest('acme-key-rotated-0123456'), scopes: ['read'] },
      { tenant: 'globex', digest: keyDigest('globex-key-0123456789abc'), scopes: ['write'] },
    ],
    keyDigest('admin-key-0123456789abcdef'),
    [keyDigest('viewer-key-0123456789abcdef')],
  );

  it('maps each key to its tenant, several keys per tenant', () => {
    expect(auth.tenantOf('acme-key-0123456789abcdef')).to.equal('acme');
    expect(auth.tenantOf('acme-key-rotated-0123456')).to.equal('acme');
    expect(auth.tenantOf('globex-key-0123456789abc')).to.equal('globex');
  });

  it('gives each key its scopes', () => {
    expect(auth.principalOf('acme-key-rotated-0123456')).to.deep.equal({
      tenant: 'acme',
      scopes: ['read'],
    });
    expect(auth.principalOf('globex-key-0123456789abc')?.scopes).to.deep.equal(['write']);
    expect(auth.isDashboardViewer('viewer-key-0123456789abcdef')).to.equal(true);
    expect(auth.principalOf('viewer-key-0123456789abcdef')).to.equal(undefined);
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
