import { expect } from 'chai';
import { describeIssues, messagesRequestSchema } from './message-request.ts';

const schema = messagesRequestSchema(10);
const msg = { client_message_id: 'm1', role: 'user', content: 'hi' };

function problem(body: unknown): string[] {
  const parsed = schema.safeParse(body);
  if (parsed.success) return [];
  return describeIssues(parsed.error).fields;
}

describe('messagesRequestSchema', () => {
  it('accepts a minimal and a full message', () => {
    expect(problem({ user_id: 'u1', messages: [msg] })).to.deep.equal([]);
    expect(
      problem({
        user_id: 'u1',
        messages: [
          { ...msg, name: 'Ann', created_at: '2026-11-21T10:00:00+01:00', metadata: { a: [1] } },
        ],
      }),
    ).to.deep.equal([]);
  });

  it('names each bad field with its path', () => {
    const fields = problem({
      user_id: '',
      messages: [msg, { ...msg, role: 'robot', content: 'x'.repeat(11) }],
    });
    expect(fields).to.have.length(3);
    expect(fields[0]).to.match(/^user_id: must not be empty/);
    expect(fields.some((f) => f.startsWith('messages[1].role:'))).to.equal(true);
    expect(fields.some((f) => f.startsWith('messages[1].content: must be at most 10'))).to.equal(
      true,
    );
  });

  it('rejects unknown fields by name, and control characters in ids', () => {
    expect(problem({ user_id: 'u1', messages: [{ ...msg, colour: 'red' }] })[0]).to.equal(
      'messages[0]: Unrecognized key: "colour" (colour)',
    );
    expect(problem({ user_id: 'u\n1', messages: [msg] })[0]).to.match(
      /^user_id: must not contain control characters/,
    );
  });

  it('rejects dates without an offset or that are not dates', () => {
    for (const created_at of ['2026-11-21', '2026-11-21T10:00:00', 'soon']) {
      expect(problem({ user_id: 'u1', messages: [{ ...msg, created_at }] })[0]).to.match(
        /^messages\[0\]\.created_at: must be an ISO-8601 date-time/,
      );
    }
  });
});
