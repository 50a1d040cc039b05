import { expect } from 'chai';
import { redactDeep } from './redact-deep.ts';

describe('redactDeep', () => {
  it('redacts strings in nested objects and arrays and sums the counts', () => {
    const input = {
      user: { email: 'jane@example.com', phones: ['415-555-2671', '+44 20 7946 0958'] },
      payment: [{ card: '4111 1111 1111 1111', amount: 1299.99, currency: 'EUR' }],
      note: 'nothing here',
      ok: true,
      missing: null,
      none: undefined,
    };
    const { value, counts } = redactDeep(input);
    expect(value).to.deep.equal({
      user: { email: '[EMAIL]', phones: ['[PHONE]', '[PHONE]'] },
      payment: [{ card: '[CARD]', amount: 1299.99, currency: 'EUR' }],
      note: 'nothing here',
      ok: true,
      missing: null,
      none: undefined,
    });
    expect(counts).to.deep.equal({ email: 1, phone: 2, card: 1 });
  });

  it('returns a copy and leaves the input untouched', () => {
    const input = { a: { b: 'x@example.com' } };
    const { value } = redactDeep(input);
    expect(input.a.b).to.equal('x@example.com');
    expect(value).to.not.equal(input);
    expect((value as typeof input).a).to.not.equal(input.a);
  });

  it('does not redact keys', () => {
    const { value } = redactDeep({ 'x@example.com': 'y@example.com' });
    expect(value).to.deep.equal({ 'x@example.com': '[EMAIL]' });
  });

  it('redacts top-level strings and passes other primitives through', () => {
    expect(redactDeep('call 415-555-2671').value).to.equal('call [PHONE]');
    expect(redactDeep(42).value).to.equal(42);
    expect(redactDeep(10n).value).to.equal(10n);
    expect(redactDeep(null).value).to.equal(null);
    expect(redactDeep(undefined).value).to.equal(undefined);
  });

  it('replaces cycles with [Circular] but copies shared references', () => {
    const shared = { email: 'a@b.io' };
    const node: Record<string, unknown> = { name: 'root', left: shared, right: shared };
    node.self = node;
    const list: unknown[] = ['x'];
    list.push(list);
    node.list = list;

    const { value, counts } = redactDeep(node);
    expect(value).to.deep.equal({
      name: 'root',
      left: { email: '[EMAIL]' },
      right: { email: '[EMAIL]' },
      self: '[Circular]',
      list: ['x', '[Circular]'],
    });
    expect(counts.email).to.equal(2);
  });

  it('truncates containers nested deeper than 20 levels', () => {
    let deep: Record<string, unknown> = { leaf: 'a@b.io' };
    for (let i = 0; i < 25; i++) deep = { child: deep, email: 'a@b.io' };

    const { value } = redactDeep(deep);
    let level = value as Record<string, unknown>;
    for (let i = 0; i < 20; i++) {
      expect(level.email, `level ${i}`).to.equal('[EMAIL]');
      level = level.child as Record<string, unknown>;
    }
    expect(level.email).to.equal('[EMAIL]');
    expect(level.child).to.equal('[Truncated]');
  });

  it('keeps exactly 20 levels of nesting', () => {
    let deep: unknown = 'a@b.io';
    for (let i = 0; i < 21; i++) deep = [deep];
    let level = redactDeep(deep).value;
    for (let i = 0; i < 21; i++) level = (level as unknown[])[0];
    expect(level).to.equal('[EMAIL]');
  });

  it('turns dates into ISO strings', () => {
    const { value } = redactDeep({ at: new Date('2024-05-01T10:30:00.000Z'), bad: new Date('x') });
    expect(value).to.deep.equal({ at: '2024-05-01T10:30:00.000Z', bad: 'Invalid Date' });
  });

  it('turns errors into redacted { name, message, stack }', () => {
    const err = new TypeError('cannot reach jane@example.com at 415-555-2671');
    const { value, counts } = redactDeep({ err });
    const out = (value as { err: Record<string, unknown> }).err;
    expect(Object.keys(out)).to.deep.equal(['name', 'message', 'stack']);
    expect(out.name).to.equal('TypeError');
    expect(out.message).to.equal('cannot reach [EMAIL] at [PHONE]');
    expect(out.stack).to.be.a('string').that.includes('TypeError: cannot reach [EMAIL] at [PHONE]');
    expect(out.stack).to.not.include('jane@example.com');
    // message and the first line of the stack
    expect(counts).to.deep.equal({ email: 2, phone: 2, card: 0 });
  });

  it('keeps the code and cause of an error', () => {
    const err = new Error('outer', { cause: new Error('card 4111111111111111 declined') });
    Object.assign(err, { code: 'E_DECLINED' });
    const out = redactDeep(err).value as Record<string, unknown>;
    expect(out.code).to.equal('E_DECLINED');
    expect((out.cause as Record<string, unknown>).message).to.equal('card [CARD] declined');
  });

  it('converts other non-plain objects to redacted plain data', () => {
    class Customer {
      email = 'c@example.com';
      greet(): string {
        return 'hi';
      }
    }
    const { value } = redactDeep({
      customer: new Customer(),
      url: new URL('https://example.com/?mail=a@b.io'),
      map: new Map([['phone', '415-555-2671']]),
      set: new Set(['4111111111111111']),
      bytes: new Uint8Array(4),
    });
    expect(value).to.deep.equal({
      customer: { email: '[EMAIL]' },
      url: 'https://example.com/?mail=[EMAIL]',
      map: { phone: '[PHONE]' },
      set: ['[CARD]'],
      bytes: '[Uint8Array 4 bytes]',
    });
  });

  it('survives throwing getters', () => {
    const input = {
      get broken(): string {
        throw new Error('nope');
      },
      fine: 'ok',
    };
    expect(redactDeep(input).value).to.deep.equal({ broken: '[Unreadable]', fine: 'ok' });
  });

  it('copies a "__proto__" key as data', () => {
    const input = JSON.parse('{"__proto__": {"email": "a@b.io"}}') as unknown;
    const value = redactDeep(input).value as object;
    expect(Object.getPrototypeOf(value)).to.equal(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(value, '__proto__')?.value).to.deep.equal({
      email: '[EMAIL]',
    });
  });

  it('passes the options on to redact', () => {
    expect(redactDeep(['ring 020 7946 0958'], { defaultCountry: 'GB' }).value).to.deep.equal([
      'ring [PHONE]',
    ]);
  });
});
