import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type * as Serialization from '@getzep/zep-cloud/serialization';
import { expect } from 'chai';

// The Zep SDK's schema code (lists, records, objects) is patched for speed, in both of its builds
// (`patches/@getzep__zep-cloud@3.30.0.patch`). These are the unpatched SDK's answers, recorded
// from it: values, key order, and the errors in their order.

type Serializers = typeof Serialization;
const require = createRequire(import.meta.url);
const cjsPath = require.resolve('@getzep/zep-cloud/serialization');
const builds: Record<'cjs' | 'esm', () => Promise<Serializers>> = {
  cjs: () => Promise.resolve(require(cjsPath) as Serializers),
  esm: () =>
    import(
      pathToFileURL(cjsPath.replace('/dist/cjs/', '/dist/esm/').replace(/\.js$/, '.mjs')).href
    ) as Promise<Serializers>,
};

for (const [build, load] of Object.entries(builds)) {
  describe(`zep SDK (${build} build): request and response serialization, as the unpatched SDK`, () => {
    let serializers: Serializers;
    before(async () => {
      serializers = await load();
    });

    const request = (value: unknown, unrecognizedObjectKeys: 'strip' | 'fail' | 'passthrough') =>
      serializers.AddThreadMessagesRequest.jsonOrThrow(value, {
        unrecognizedObjectKeys,
        omitUndefined: true,
      });

    const message = (extra: Record<string, unknown> = {}) => ({
      role: 'user',
      content: 'hi',
      createdAt: '2026-01-01T00:00:00Z',
      metadata: { a: 1, b: 'x', c: undefined, client_message_id: 'c-1' },
      ...extra,
    });

    const wire = {
      role: 'user',
      content: 'hi',
      created_at: '2026-01-01T00:00:00Z',
      metadata: { a: 1, b: 'x', client_message_id: 'c-1' },
    };

    function errorOf(fn: () => unknown): string {
      try {
        fn();
      } catch (err: unknown) {
        return err instanceof Error ? err.message : String(err);
      }
      throw new Error('expected an error');
    }

    it('turns a request into its wire form, in order, leaving out undefined record values', () => {
      const json = request(
        {
          messages: [message(), message({ role: 'assistant', name: 'bot' })],
          ignoreRoles: ['assistant'],
          returnContext: true,
        },
        'strip',
      );
      expect(JSON.stringify(json)).to.equal(
        JSON.stringify({
          messages: [wire, { ...wire, role: 'assistant', name: 'bot' }],
          ignore_roles: ['assistant'],
          return_context: true,
        }),
      );
      expect(Object.keys(json.messages[0]?.metadata ?? {})).to.deep.equal([
        'a',
        'b',
        'client_message_id',
      ]);
    });

    it('orders integer-like record keys first, as an object does', () => {
      const json = request(
        { messages: [message({ metadata: { z: 1, 2: 'two', 1: 'one' } })] },
        'strip',
      );
      expect(Object.keys(json.messages[0]?.metadata ?? {})).to.deep.equal(['1', '2', 'z']);
    });

    it('reports every invalid item of a list, in order, with its path', () => {
      expect(
        errorOf(() =>
          request(
            {
              messages: [
                message({ content: undefined }),
                message({ role: 'nope' }),
                message({ metadata: 'x' }),
              ],
            },
            'strip',
          ),
        ),
      ).to.equal(
        'messages -> [0] -> content: Expected string. Received undefined.; ' +
          'messages -> [1] -> role: Expected enum. Received "nope".; ' +
          'messages -> [2] -> metadata: Expected object. Received "x".',
      );
    });

    it('strips, refuses or passes through unknown keys as asked', () => {
      expect(request({ messages: [message({ extra: 1 })] }, 'strip').messages[0]).to.deep.equal(
        wire,
      );
      expect(errorOf(() => request({ messages: [message({ extra: 1 })] }, 'fail'))).to.equal(
        'messages -> [0] -> extra: Unexpected key "extra"',
      );
      expect(
        request({ messages: [message({ extra: 1 })] }, 'passthrough').messages[0],
      ).to.deep.equal({ ...wire, extra: 1 });
    });

    it('reports missing required keys after the invalid ones, and only own enumerable keys count', () => {
      expect(errorOf(() => request({}, 'strip'))).to.equal('Missing required key "messages"');
      expect(
        errorOf(() =>
          serializers.Message.parseOrThrow(
            { role: 'user', metadata: 'bad', processed: 'no' },
            { breadcrumbsPrefix: ['p'] },
          ),
        ),
      ).to.equal(
        'p -> metadata: Expected object. Received "bad".; ' +
          'p -> processed: Expected boolean. Received "no".; p: Missing required key "content"',
      );
      const hidden = Object.defineProperty({ role: 'user' }, 'content', {
        value: 'hidden',
        enumerable: false,
      });
      expect(errorOf(() => serializers.Message.parseOrThrow(hidden))).to.equal(
        'Missing required key "content"',
      );
      expect(errorOf(() => serializers.Message.jsonOrThrow(hidden))).to.equal(
        'Missing required key "content"',
      );
    });

    it('parses a response: keys renamed, holes of a list skipped, unknown keys passed through', () => {
      const sparse: unknown[] = [];
      sparse[1] = 'b';
      sparse[3] = 'd';
      expect(
        serializers.AddThreadMessagesResponse.parseOrThrow({ message_uuids: sparse }),
      ).to.deep.equal({ messageUuids: ['b', 'd'] });
      expect(
        serializers.AddThreadMessagesResponse.parseOrThrow(
          { message_uuids: ['a', 'b'], task_id: 't', context: 'c', other: 1 },
          { unrecognizedObjectKeys: 'passthrough', skipValidation: true },
        ),
      ).to.deep.equal({ messageUuids: ['a', 'b'], taskId: 't', context: 'c', other: 1 });
      expect(
        errorOf(() =>
          serializers.AddThreadMessagesResponse.parseOrThrow(
            { message_uuids: ['a', 2, 3], extra: 1 },
            { unrecognizedObjectKeys: 'fail' },
          ),
        ),
      ).to.equal(
        'message_uuids -> [1]: Expected string. Received 2.; ' +
          'message_uuids -> [2]: Expected string. Received 3.; extra: Unexpected key "extra"',
      );
    });

    it('gives the same answer to the same schema every time', () => {
      const first = serializers.Message.jsonOrThrow({ role: 'user', content: 'x' });
      const second = serializers.Message.jsonOrThrow({ role: 'user', content: 'x' });
      expect(second).to.deep.equal(first);
      expect(errorOf(() => serializers.Message.jsonOrThrow({ role: 'user' }))).to.equal(
        'Missing required key "content"',
      );
    });
  });
}
