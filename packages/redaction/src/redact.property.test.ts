import { expect } from 'chai';
import fc from 'fast-check';
import { redact } from './redact.ts';
import { redactDeep } from './redact-deep.ts';

const lower = fc.constantFrom(...Array.from('abcdefghijklmnopqrstuvwxyz'));
const alnum = fc.constantFrom(...Array.from('abcdefghijklmnopqrstuvwxyz0123456789'));
/** Plain words of two letters or more (a lone `x` after a phone number reads as an extension). */
const word = fc.string({ unit: lower, minLength: 2, maxLength: 8 });

/** Addresses as people write them: `first.last+tag@sub.example.com`. */
const email = fc
  .tuple(
    fc.string({ unit: alnum, minLength: 1, maxLength: 10 }),
    fc.option(fc.tuple(fc.constantFrom('.', '_', '-', '+'), word)),
    fc.array(fc.string({ unit: alnum, minLength: 2, maxLength: 10 }), {
      minLength: 1,
      maxLength: 3,
    }),
    fc.constantFrom('com', 'org', 'io', 'de', 'co.uk', 'example', 'travel'),
  )
  .map(([local, tail, labels, tld]) => {
    const user = tail === null ? local : `${local}${tail[0]}${tail[1]}`;
    return `${user}@${labels.join('.')}.${tld}`;
  });

/** US numbers on real area codes, in the common national and international spellings. */
const phone = fc
  .tuple(
    fc.constantFrom('212', '415', '646', '312', '617', '206', '303', '512'),
    fc.integer({ min: 2, max: 9 }),
    fc.integer({ min: 20, max: 99 }),
    fc.integer({ min: 0, max: 9999 }),
    fc.constantFrom('(A) E-S', 'A-E-S', 'A.E.S', '+1 A E S', '+1-A-E-S', '1 (A) E-S'),
  )
  .map(([area, e1, e2, sub, format]) =>
    format
      .replace('A', area)
      .replace('E', `${String(e1)}${String(e2).padStart(2, '0')}`)
      .replace('S', String(sub).padStart(4, '0')),
  );

function luhnCheckDigit(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

/** Luhn-valid Visa / Mastercard / Amex numbers, plain or grouped by spaces or dashes. */
const card = fc
  .tuple(
    fc.constantFrom(['4', 16], ['51', 16], ['55', 16], ['2221', 16], ['34', 15], ['37', 15]),
    fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 14, maxLength: 14 }),
    fc.constantFrom('', ' ', '-'),
  )
  .map(([[prefix, length], digits, sep]) => {
    const body = (prefix + digits.join('')).slice(0, length - 1);
    const number = body + luhnCheckDigit(body);
    return sep === '' ? number : (number.match(/.{1,4}/g) ?? []).join(sep);
  });

const pii = fc.oneof(email, phone, card);

/** Digit-heavy text that is not personal data. */
const lookAlike = fc.oneof(
  fc
    .tuple(fc.integer({ min: 0, max: 99_999 }), fc.integer({ min: 0, max: 99 }))
    .map(([a, b]) => `$${a.toLocaleString('en-US')}.${String(b).padStart(2, '0')}`),
  fc
    .date({ min: new Date('1990-01-01'), max: new Date('2099-12-31'), noInvalidDate: true })
    .map((d) => d.toISOString().slice(0, 10)),
  fc
    .date({ min: new Date('1990-01-01'), max: new Date('2099-12-31'), noInvalidDate: true })
    .map((d) => d.toISOString().slice(0, 19) + 'Z'),
  fc
    .tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }))
    .map(([h, m]) => `${String(h)}:${String(m).padStart(2, '0')}`),
  fc.integer({ min: 0, max: 999_999 }).map((n) => `order #${String(n)}`),
  fc.integer({ min: 0, max: 99_999 }).map((n) => `ORD-${String(n).padStart(5, '0')}`),
  fc
    .tuple(fc.nat(20), fc.nat(40), fc.nat(200))
    .map(([a, b, c]) => `v${String(a)}.${String(b)}.${String(c)}`),
  fc.integer({ min: 1, max: 9999 }).map((n) => `${String(n)} items`),
);

/**
 * A sentence of plain words with `parts` placed between them, each part followed by a word (a
 * price written right before a phone number, "$78,011.90 (212) 220-0000", reads as one number
 * dialled from the US to Turkey: 011 90 212 220 0000).
 */
function sentence(parts: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc
    .array(
      fc.oneof(
        word,
        fc.tuple(parts, word).map(([p, w]) => `${p} ${w}`),
      ),
      {
        minLength: 1,
        maxLength: 8,
      },
    )
    .map((ws) => ws.join(' '));
}

const anyText = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  sentence(fc.oneof(pii, lookAlike, fc.string({ maxLength: 12 }))),
);

describe('redact (properties)', () => {
  it('is idempotent', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const once = redact(text).text;
        expect(redact(once).text).to.equal(once);
      }),
      { numRuns: 500 },
    );
  });

  it('leaves no generated email, phone or card number in any sentence', () => {
    fc.assert(
      fc.property(
        fc.array(word, { maxLength: 4 }),
        pii,
        fc.array(word, { maxLength: 4 }),
        (before, value, after) => {
          const text = [...before, value, ...after].join(' ');
          const out = redact(text).text;
          expect(out).not.to.include(value);
          expect(out).to.match(/\[(EMAIL|PHONE|CARD)\]/);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('replaces every phone number of a run written back to back', () => {
    fc.assert(
      fc.property(
        fc.array(phone, { minLength: 2, maxLength: 4 }),
        fc.constantFrom(' ', ' x ', ', ', ' or ', ' / '),
        (phones, separator) => {
          const r = redact(`call ${phones.join(separator)} now`);
          for (const p of phones) expect(r.text).not.to.include(p);
          expect(r.counts).to.deep.equal({ email: 0, phone: phones.length, card: 0 });
        },
      ),
      { numRuns: 500 },
    );
  });

  it('counts each kind it replaced', () => {
    fc.assert(
      fc.property(email, phone, card, (e, p, c) => {
        const r = redact(`mail ${e}, call ${p}, pay with ${c} today`);
        expect(r.text).to.equal('mail [EMAIL], call [PHONE], pay with [CARD] today');
        expect(r.counts).to.deep.equal({ email: 1, phone: 1, card: 1 });
      }),
      { numRuns: 200 },
    );
  });

  it('keeps prices, dates, times, order numbers and versions', () => {
    fc.assert(
      fc.property(sentence(lookAlike), (text) => {
        expect(redact(text).text).to.equal(text);
      }),
      { numRuns: 500 },
    );
  });
});

describe('redactDeep (properties)', () => {
  const nested = fc.letrec((tie) => ({
    node: fc.oneof(
      { depthSize: 'small' },
      sentence(pii),
      fc.jsonValue({ maxDepth: 1 }),
      fc.array(tie('node'), { maxLength: 4 }),
      fc.dictionary(word, tie('node'), { maxKeys: 4 }),
    ),
  })).node;

  it('is idempotent and leaves no generated PII anywhere in the value', () => {
    fc.assert(
      fc.property(nested, pii, (value, secret) => {
        const input = { note: `reach me at ${secret}`, value };
        const once = redactDeep(input).value;
        expect(redactDeep(once).value).to.deep.equal(once);
        expect(JSON.stringify(once)).not.to.include(secret);
      }),
      { numRuns: 300 },
    );
  });
});
