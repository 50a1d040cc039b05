import { expect } from 'chai';
import fc from 'fast-check';
import { holdsContactData } from '@memfleet/http/ids';
import { describeIssues, messagesRequestSchema } from './message-request.ts';

const CONTENT_MAX = 200;
const schema = messagesRequestSchema(CONTENT_MAX);

/** Top-level names a field of an issue may start with. */
const FIELD_RE = /^(body|user_id|messages)(\[\d+\])?(\.[a-z_]+)?(\[\d+\])?: \S/;

/** Parses `body` the way the API does and answers the issues' fields, or `[]` when valid. */
function fieldsOf(body: unknown): string[] {
  const parsed = schema.safeParse(body);
  return parsed.success ? [] : describeIssues(parsed.error).fields;
}

/** Keys that pollute prototypes when copied naively, mixed into generated objects. */
const hostileKey = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'valueOf');

/** Arbitrary JSON as `JSON.parse` would hand it over, including `__proto__` as an own key. */
const parsedJson = fc
  .letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.jsonValue({ maxDepth: 2 }),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(fc.oneof(fc.string(), hostileKey), tie('value'), { maxKeys: 5 }),
    ),
  }))
  .value.map((v) => JSON.parse(JSON.stringify(v)) as unknown);

const id = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 40 })
  // eslint-disable-next-line no-control-regex
  .filter((s) => !/[\u0000-\u001f\u007f]/.test(s) && s.length <= 256 && !holdsContactData(s));

const validMessage = fc.record(
  {
    client_message_id: id,
    role: fc.constantFrom('user', 'assistant', 'system', 'tool'),
    content: fc
      .string({ unit: 'grapheme', minLength: 1, maxLength: CONTENT_MAX })
      .filter((s) => s.trim().length > 0 && s.length <= CONTENT_MAX),
    name: id,
    created_at: fc
      .date({
        min: new Date('1970-01-01T00:00:00Z'),
        max: new Date('2999-12-31T23:59:59Z'),
        noInvalidDate: true,
      })
      .map((d) => d.toISOString()),
    // Keys the schema refuses at any depth (fast-check's strings favour them) are left out here;
    // the hostile-input properties below cover them.
    metadata: fc
      .dictionary(fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 3 }), {
        maxKeys: 5,
      })
      .filter((m) => !holdsRefusedKey(m)),
  },
  { requiredKeys: ['client_message_id', 'role', 'content'] },
);

/** Whether a JSON value holds `__proto__`, `constructor` or `prototype` as a key anywhere. */
function holdsRefusedKey(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(holdsRefusedKey);
  if (typeof value !== 'object' || value === null) return false;
  return Object.entries(value).some(
    ([k, v]) => k === '__proto__' || k === 'constructor' || k === 'prototype' || holdsRefusedKey(v),
  );
}

const validRequest = fc.record({
  user_id: id,
  messages: fc.array(validMessage, { minLength: 1, maxLength: 5 }),
});

describe('messagesRequestSchema (properties)', () => {
  it('never throws on arbitrary JSON and names a field in every issue', () => {
    fc.assert(
      fc.property(parsedJson, (body) => {
        const fields = fieldsOf(body);
        for (const f of fields) expect(f).to.match(FIELD_RE);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on a request whose fields are arbitrary JSON', () => {
    fc.assert(
      fc.property(parsedJson, parsedJson, parsedJson, (userId, message, metadata) => {
        const body = {
          user_id: userId,
          messages: [message, { client_message_id: 'm', role: 'user', content: 'x', metadata }],
        };
        const fields = fieldsOf(body);
        for (const f of fields) expect(f).to.match(FIELD_RE);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses prototype keys as unknown fields and leaves Object.prototype alone', () => {
    fc.assert(
      fc.property(hostileKey, parsedJson, (key, value) => {
        const body = JSON.parse(
          `{"user_id":"u1","messages":[{"client_message_id":"m","role":"user","content":"x",${JSON.stringify(key)}:${JSON.stringify(value) ?? 'null'}}]}`,
        ) as unknown;
        const fields = fieldsOf(body);
        expect(fields, key).to.have.length.greaterThan(0);
        expect(fields[0]).to.match(/^messages\[0\]: Unrecognized key/);
      }),
      { numRuns: 100 },
    );
    fc.assert(
      fc.property(
        hostileKey.filter((k) => k.length > 8),
        fc.nat(19),
        (key, depth) => {
          const inner = `{${JSON.stringify(key)}:{"polluted":true}}`;
          const metadata = '{"a":'.repeat(depth) + inner + '}'.repeat(depth);
          const body = JSON.parse(
            `{"user_id":"u1","messages":[{"client_message_id":"m","role":"user","content":"x","metadata":${metadata}}]}`,
          ) as unknown;
          expect(fieldsOf(body)).to.deep.equal([
            `messages[0].metadata: must not hold the key ${key} at any level`,
          ]);
        },
      ),
      { numRuns: 50 },
    );
    expect(Object.keys(Object.prototype)).to.deep.equal([]);
  });

  it('refuses metadata nested 10 000 levels deep with a 400-style issue, not a stack overflow', () => {
    const deep = JSON.parse(`{"a":${'['.repeat(10_000)}${']'.repeat(10_000)}}`) as unknown;
    const fields = fieldsOf({
      user_id: 'u1',
      messages: [{ client_message_id: 'm', role: 'user', content: 'x', metadata: deep }],
    });
    expect(fields).to.deep.equal(['messages[0].metadata: must be nested at most 20 levels deep']);
  });

  it('accepts every valid request and hands it back unchanged', () => {
    fc.assert(
      fc.property(validRequest, (body) => {
        const wire = JSON.parse(JSON.stringify(body)) as unknown;
        const parsed = schema.safeParse(wire);
        expect(parsed.success, parsed.success ? '' : describeIssues(parsed.error).message).to.equal(
          true,
        );
        expect(parsed.data).to.deep.equal(wire);
      }),
      { numRuns: 300 },
    );
  });
});
