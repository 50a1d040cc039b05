import { expect } from 'chai';
import {
  backfillLineSchema,
  defaultCursorName,
  parseBackfillLine,
  parseCursorName,
  parseRate,
  parseSince,
  parseTenant,
  redactedBody,
} from './backfill-input.ts';
import { TokenBucket } from './token-bucket.ts';

const NOW = Date.parse('2026-11-21T12:00:00.000Z');

describe('backfill input', () => {
  describe('--since', () => {
    it('takes days, hours and minutes back from now', () => {
      expect(parseSince('30d', NOW).toISOString()).to.equal('2026-10-22T12:00:00.000Z');
      expect(parseSince('12h', NOW).toISOString()).to.equal('2026-11-21T00:00:00.000Z');
      expect(parseSince('90m', NOW).toISOString()).to.equal('2026-11-21T10:30:00.000Z');
    });

    it('takes an ISO date (midnight UTC) or a date-time with an offset', () => {
      expect(parseSince('2026-11-01', NOW).toISOString()).to.equal('2026-11-01T00:00:00.000Z');
      expect(parseSince('2026-11-01T08:00:00+02:00', NOW).toISOString()).to.equal(
        '2026-11-01T06:00:00.000Z',
      );
    });

    it('refuses anything else, naming --since', () => {
      for (const bad of ['30', '30y', '-3d', '0d', 'yesterday', '2026-13-01', '2026-11-01T08:00']) {
        expect(() => parseSince(bad, NOW), bad).to.throw(/^--since: /);
      }
      expect(() => parseSince('2026-12-01', NOW)).to.throw('--since: 2026-12-01 is in the future');
    });
  });

  describe('--rate', () => {
    it('takes messages per second or per minute', () => {
      expect(parseRate('200/s')).to.deep.equal({ count: 200, unit: 's', perSecond: 200 });
      expect(parseRate('120/m')).to.deep.equal({ count: 120, unit: 'm', perSecond: 2 });
    });

    it('refuses other spellings and bounds, naming --rate', () => {
      for (const bad of ['200', '0/s', '200/h', '1.5/s', '/s', '200000/s', 'fast']) {
        expect(() => parseRate(bad), bad).to.throw(/^--rate: /);
      }
    });
  });

  it('checks tenants and cursor names, and hashes the default cursor name from the selection', () => {
    expect(parseTenant('acme')).to.equal('acme');
    expect(() => parseTenant('Acme Corp')).to.throw(/^--tenant: /);
    expect(parseCursorName('zep-move.1')).to.equal('zep-move.1');
    expect(() => parseCursorName('a b')).to.throw(/^--name: /);
    const base = { source: 'ledger', since: '30d', tenants: ['b', 'a'], to: 'zep' };
    const name = defaultCursorName(base);
    expect(name).to.match(/^[0-9a-f]{16}$/);
    expect(defaultCursorName({ ...base, tenants: ['a', 'b', 'a'] })).to.equal(name);
    expect(defaultCursorName({ ...base, to: 'mem0' })).to.not.equal(name);
    expect(defaultCursorName({ ...base, since: '12h' })).to.not.equal(name);
    expect(defaultCursorName({ ...base, tenants: undefined })).to.not.equal(name);
    expect(defaultCursorName({ ...base, source: 'file:/x.jsonl' })).to.not.equal(name);
  });

  describe('backfill file lines', () => {
    const schema = backfillLineSchema(50);
    const good = {
      tenant: 'acme',
      thread_id: 't-1',
      user_id: 'u1',
      client_message_id: 'm-1',
      role: 'user',
      content: 'mail me at jane@example.com',
      created_at: '2026-11-20T10:00:00Z',
    };
    const line = (v: object) => parseBackfillLine(JSON.stringify(v), schema);

    it('accepts a valid line, with name and metadata optional', () => {
      expect(line(good)).to.deep.equal({ ok: true, line: good });
      const full = { ...good, name: 'Jane', metadata: { a: 1 } };
      expect(line(full)).to.deep.equal({ ok: true, line: full });
    });

    it('rejects a bad line naming the field', () => {
      const cases: [unknown, RegExp][] = [
        [{ ...good, role: 'robot' }, /^role: /],
        [{ ...good, content: '   ' }, /^content: must not be empty$/],
        [{ ...good, content: 'x'.repeat(51) }, /^content: must be at most 50 characters$/],
        [{ ...good, tenant: 'ACME' }, /^tenant: must be a tenant name/],
        [{ ...good, thread_id: '' }, /^thread_id: must not be empty$/],
        [{ ...good, created_at: 'yesterday' }, /^created_at: must be an ISO-8601 date-time$/],
        [{ ...good, metadata: [1] }, /^metadata: /],
        [{ ...good, colour: 'red' }, /^colour: unknown field$/],
        [[good], /^must be a JSON object$/],
      ];
      for (const [value, re] of cases) {
        const res = parseBackfillLine(JSON.stringify(value), schema);
        expect(res.ok, JSON.stringify(value)).to.equal(false);
        if (!res.ok) expect(res.error).to.match(re);
      }
      const { user_id: _, ...noUser } = good;
      expect(line(noUser)).to.deep.equal({ ok: false, error: 'user_id: required' });
      const { created_at: __, ...noDate } = good;
      expect(line(noDate)).to.deep.equal({ ok: false, error: 'created_at: required' });
      expect(parseBackfillLine('{"tenant":', schema)).to.deep.equal({
        ok: false,
        error: 'not valid JSON',
      });
    });

    it('redacts the body as the API does: content, name and every metadata string', () => {
      const parsed = line({
        ...good,
        name: 'call +44 20 7946 0958',
        metadata: { card: '4111 1111 1111 1111', nested: ['jane@example.com', 3] },
      });
      if (!parsed.ok) throw new Error(parsed.error);
      expect(JSON.parse(redactedBody(parsed.line, 'US'))).to.deep.equal({
        role: 'user',
        content: 'mail me at [EMAIL]',
        name: 'call [PHONE]',
        created_at: '2026-11-20T10:00:00Z',
        metadata: { card: '[CARD]', nested: ['[EMAIL]', 3] },
      });
      const national = line({ ...good, content: 'ring 020 7946 0958' });
      if (!national.ok) throw new Error(national.error);
      expect(JSON.parse(redactedBody(national.line, 'GB'))).to.deep.include({
        content: 'ring [PHONE]',
        metadata: {},
      });
    });
  });

  describe('token bucket (--rate)', () => {
    it('spends a burst at once, then holds the rate, also for takes over the capacity', async () => {
      let t = 0;
      const bucket = new TokenBucket({
        perSecond: 50,
        capacity: 50,
        now: () => t,
        sleep: (ms) => {
          t += ms;
          return Promise.resolve();
        },
      });
      await bucket.take(50);
      expect(t).to.equal(0);
      for (let i = 0; i < 10; i++) await bucket.take(10);
      // 100 more messages at 50/s: two seconds of the clock.
      expect(t).to.be.within(2000, 2010);
      await bucket.take(150);
      // A take over the capacity waits for a full bucket and leaves the rest as debt...
      expect(t).to.be.within(3000, 3010);
      await bucket.take(1);
      // ...which the next take pays back first.
      expect(t).to.be.within(5000, 5030);
    });
  });
});
