import { expect } from 'chai';
import { redact, type RedactionCounts } from './redact.ts';

function counts(partial: Partial<RedactionCounts>): RedactionCounts {
  return { email: 0, phone: 0, card: 0, ...partial };
}

describe('redact', () => {
  describe('emails', () => {
    for (const email of [
      'jane.doe@example.com',
      'bob.smith+newsletter@mail.example.co.uk',
      'o_connor-99@sub-domain.example.io',
      'USER%tag@EXAMPLE.ORG',
      'josé@exämple.de',
    ]) {
      it(`replaces ${email}`, () => {
        const r = redact(`write to ${email} today`);
        expect(r.text).to.equal('write to [EMAIL] today');
        expect(r.counts).to.deep.equal(counts({ email: 1 }));
      });
    }

    it('keeps sentence punctuation around the address', () => {
      expect(redact('Mail me (a@b.io).').text).to.equal('Mail me ([EMAIL]).');
      expect(redact('x@example.com,y@example.org').text).to.equal('[EMAIL],[EMAIL]');
    });

    it('keeps @mentions and hosts without a top-level domain', () => {
      for (const text of ['ping @alex about it', 'ssh root@localhost', 'meet @ 10:30', 'a@b']) {
        expect(redact(text).text).to.equal(text);
      }
    });
  });

  describe('phone numbers', () => {
    for (const phone of [
      '+44 20 7946 0958',
      '+49 30 901820',
      '+1 (415) 555-2671',
      '+14155552671',
      '(415) 555-2671',
      '415-555-2671',
      '415.555.2671',
      '415 555 2671',
      '4155552671',
      '1-800-555-0199',
    ]) {
      it(`replaces ${phone}`, () => {
        const r = redact(`call ${phone} after 6pm`);
        expect(r.text).to.equal('call [PHONE] after 6pm');
        expect(r.counts).to.deep.equal(counts({ phone: 1 }));
      });
    }

    it('includes an extension written after the number', () => {
      expect(redact('desk: 415-555-2671 ext. 23, thanks').text).to.equal('desk: [PHONE], thanks');
    });

    it('finds several numbers in one text', () => {
      const r = redact('home 415-555-2671, work 415-555-2672 or +44 20 7946 0958.');
      expect(r.text).to.equal('home [PHONE], work [PHONE] or [PHONE].');
      expect(r.counts.phone).to.equal(3);
    });

    it('recognises national formats of the default country', () => {
      expect(redact('ruf an: 030 901820', { defaultCountry: 'DE' }).text).to.equal(
        'ruf an: [PHONE]',
      );
      expect(redact('ring 020 7946 0958', { defaultCountry: 'GB' }).text).to.equal('ring [PHONE]');
      // The same digits are not a valid US number.
      expect(redact('ring 020 7946 0958').text).to.equal('ring 020 7946 0958');
    });

    describe('written back to back', () => {
      for (const [text, expected] of [
        // "x 212" would read as an extension of the first number.
        ['(212) 220-0000 x 212.220.0000', '[PHONE] x [PHONE]'],
        ['212-220-0000 x 212-220-0001', '[PHONE] x [PHONE]'],
        ['212.220.0000 x 212.220.0000', '[PHONE] x [PHONE]'],
        ['call (212) 220-0000 x 212-220-0001 today', 'call [PHONE] x [PHONE] today'],
        // The second number's trunk prefix "1" would be read as the end of the first (the "1"
        // itself may stay).
        ['+1-212-220-0000 1 (212) 220-0000', '[PHONE] 1 [PHONE]'],
        ['+1 212 220 0000 1 (212) 220-0001', '[PHONE] 1 [PHONE]'],
        ['(212) 220-0000 1 (212) 220-0001', '[PHONE] 1 [PHONE]'],
        ['212-220-0000 1 (212) 220-0001', '[PHONE] 1 [PHONE]'],
        ['1 (212) 220-0000 1 (212) 220-0001', '[PHONE] 1 [PHONE]'],
        ['+44 20 7946 0958 1 (212) 220-0000', '[PHONE] 1 [PHONE]'],
        ['+1-212-220-0000 1 (212) 220-0000 1 (212) 220-0001', '[PHONE] [PHONE] 1 [PHONE]'],
        ['+1-212-220-0000 12 (212) 220-0000', '[PHONE] 12 [PHONE]'],
        ['(212) 220-0000 1 (212) 220-0001 2 times', '[PHONE] 1 [PHONE] 2 times'],
        ['call (212) 220-0000 2 times', 'call [PHONE] 2 times'],
        ['415-555-2671 x 23 415-555-2672', '[PHONE] [PHONE]'],
      ] as const) {
        it(`replaces each number in "${text}"`, () => {
          const r = redact(text);
          expect(r.text).to.equal(expected);
          expect(r.counts).to.deep.equal(counts({ phone: expected.split('[PHONE]').length - 1 }));
        });
      }

      it('still reads "x 212" as an extension when no number follows it', () => {
        expect(redact('desk (212) 220-0000 x 212, thanks').text).to.equal('desk [PHONE], thanks');
        expect(redact('(212) 220-0000 x 212 212.220.0000').text).to.equal('[PHONE] [PHONE]');
      });

      it('keeps look-alikes next to a number', () => {
        for (const [text, expected] of [
          ['ORD 2024 000123 (415) 555-2671', 'ORD 2024 000123 [PHONE]'],
          ['order #48213577 (415) 555-2671', 'order #48213577 [PHONE]'],
          ['$1,299.99 x 212.220.0000', '$1,299.99 x [PHONE]'],
          ['(212) 220-0000 x 2BR', '[PHONE] x 2BR'],
          ['(212) 220-0000 2BR flat', '[PHONE] 2BR flat'],
          ['scores 12 15 18 20 22 19 17 5', 'scores 12 15 18 20 22 19 17 5'],
          ['(212) 220-0000 x 2024-05-01', '[PHONE] x 2024-05-01'],
        ] as const) {
          expect(redact(text).text).to.equal(expected);
        }
      });
    });

    it('finds numbers written right after non-Latin text', () => {
      expect(redact('電話4155552671です').text).to.equal('電話[PHONE]です');
    });

    it('keeps numbers that are not valid phone numbers', () => {
      for (const text of ['call 555-2671', 'dial 123-456-7890', 'phone 1234567']) {
        expect(redact(text).text).to.equal(text);
      }
    });
  });

  describe('payment cards', () => {
    for (const card of [
      '4111111111111111',
      '4111 1111 1111 1111',
      '4111-1111-1111-1111',
      '5500 0000 0000 0004',
      '378282246310005',
      '3782 822463 10005',
      '6011000990139424',
      '4222222222222',
      '6304 0000 0000 0000 018',
    ]) {
      it(`replaces ${card}`, () => {
        const r = redact(`pay with ${card} please`);
        expect(r.text).to.equal('pay with [CARD] please');
        expect(r.counts).to.deep.equal(counts({ card: 1 }));
      });
    }

    it('keeps numbers that fail the Luhn check', () => {
      for (const text of [
        'pay with 4111 1111 1111 1112',
        'ref 1234567890123',
        'id 4111-1111-1111-1110',
      ]) {
        expect(redact(text).text).to.equal(text);
        expect(redact(text).counts).to.deep.equal(counts({}));
      }
    });

    it('keeps a Luhn-valid prefix of a longer digit run', () => {
      // The first 16 digits are a valid card; the run as a whole is not.
      const text = 'serial 41111111111111110000';
      expect(redact(text).text).to.equal(text);
    });

    it('finds a card next to an unrelated small number', () => {
      expect(redact('qty 2 4111 1111 1111 1111').text).to.equal('qty 2 [CARD]');
      expect(redact('ticket 12 4111111111111111').text).to.equal('ticket 12 [CARD]');
    });

    it('keeps lists of small numbers and decimal amounts', () => {
      for (const text of ['scores 12 15 18 20 22 19 17 5', 'total 1234567890123.45 units']) {
        expect(redact(text).text).to.equal(text);
      }
    });

    it('redacts a card as a card, never as a phone number', () => {
      const r = redact('card 4111 1111 1111 1111 ok');
      expect(r.text).to.equal('card [CARD] ok');
      expect(r.counts).to.deep.equal(counts({ card: 1 }));
    });
  });

  describe('cards next to other numbers', () => {
    it('finds a card followed by a dotted phone number', () => {
      expect(redact('4000000000000002 212.220.0000 a').text).to.equal('[CARD] [PHONE] a');
    });

    it('reads phone numbers written back to back as phone numbers, not as a card', () => {
      // Their digits pass Luhn: "220-4126 312-520-8578" as a whole, "4786 415-935-8930" in part.
      for (const text of ['(212) 220-4126 312-520-8578', '(212) 220-4786 415-935-8930']) {
        const r = redact(text);
        expect(r.text).to.equal('[PHONE] [PHONE]');
        expect(r.counts).to.deep.equal(counts({ phone: 2 }));
      }
    });

    it('reads an order number followed by a phone number as those two, not as a card', () => {
      // "4704 512-235-0580", "603877 415-643-5631" and "00000 212-480-0000" pass Luhn.
      for (const [text, expected] of [
        ['order #4704 512-235-0580 ok', 'order #4704 [PHONE] ok'],
        ['order #603877 415-643-5631 ok', 'order #603877 [PHONE] ok'],
        ['ORD-00000 212-480-0000', 'ORD-00000 [PHONE]'],
      ] as const) {
        const r = redact(text);
        expect(r.text).to.equal(expected);
        expect(r.counts).to.deep.equal(counts({ phone: 1 }));
      }
    });

    it('keeps an order number followed by a date', () => {
      for (const text of ['ORD-67665 2002-01-16', 'order #422340 2089-07-24T00:00:00Z']) {
        expect(redact(text).text).to.equal(text);
      }
    });
  });

  describe('look-alikes', () => {
    for (const text of [
      'It costs $1,299.99 today',
      'It costs 1299 EUR',
      'We fly on 2024-05-01',
      'We fly on 05/01/2024',
      'We fly on 1 May 2024',
      'from 2024-05-01 10:30 to 2024-05-02 11:45',
      'at 2024-05-01T10:30:00.000Z',
      'See you at 10:30',
      'Back in 2024, or was it 1999?',
      'Your order #123456 has shipped',
      'Reference ORD-2024-000123 confirmed',
      'Reference ORD 2024 000123 confirmed',
      'A 2BR flat for $2,450/month',
      'Upgrade to v1.2.3 now',
      'Server 10.0.0.1 and 192.168.100.200 are down',
      'Room 12, floor 3, 4 guests',
      'timestamp 1714567890123',
      'uuid 123e4567-e89b-12d3-a456-426614174000',
      'ISBN 978-3-16-148410-0',
      'Just a normal sentence without anything personal.',
    ]) {
      it(`keeps "${text}"`, () => {
        const r = redact(text);
        expect(r.text).to.equal(text);
        expect(r.counts).to.deep.equal(counts({}));
      });
    }
  });

  it('redacts an email, a phone number and a card in one message', () => {
    const r = redact(
      'Hi, I am jane.doe@example.com, call (415) 555-2671 or +44 20 7946 0958; my card is 4111 1111 1111 1111, order #123456 on 2024-05-01 for $1,299.99.',
    );
    expect(r.text).to.equal(
      'Hi, I am [EMAIL], call [PHONE] or [PHONE]; my card is [CARD], order #123456 on 2024-05-01 for $1,299.99.',
    );
    expect(r.counts).to.deep.equal({ email: 1, phone: 2, card: 1 });
  });

  it('returns the very same string when there is nothing to redact', () => {
    const text = 'Order #123456 ships 2024-05-01 at 10:30 from 10.0.0.1 for $1,299.99 (v1.2.3).';
    expect(redact(text).text).to.equal(text);
    expect(redact('').text).to.equal('');
  });

  it('does not carry state between calls', () => {
    const text = 'mail a@b.io, call 415-555-2671, card 4111111111111111';
    const first = redact(text);
    const second = redact(text);
    expect(second).to.deep.equal(first);
    expect(first.counts).to.deep.equal({ email: 1, phone: 1, card: 1 });
  });

  it('stays fast on long digit-heavy text', () => {
    const text =
      'from 2024-05-01 to 2024-05-07 order #123456 ref ORD-2024-000123 $1,299.99 '.repeat(1000);
    const started = performance.now();
    expect(redact(text).text).to.equal(text);
    expect(performance.now() - started).to.be.below(1000);
  });
});
