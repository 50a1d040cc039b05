import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scanLogs } from './log-scan.ts';

describe('log scan', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'memfleet-logscan-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('names the file and line of every email, phone and card number in logs and store dumps, and passes redacted lines', async () => {
    await writeFile(
      join(dir, 'api-1.log'),
      [
        '{"level":"info","message":"accepted","content":"mail [EMAIL], call [PHONE]","ts":1764200000000}',
        '{"level":"warn","message":"bad","err":"from ann@example.com"}',
      ].join('\n'),
    );
    await writeFile(
      join(dir, 'worker-2.log'),
      'ok line\ncall +1 415 555 0100 now\ncard 4111 1111 1111 1111\n',
    );
    await writeFile(
      join(dir, 'redis-_t1_.dump'),
      [
        '{"key":"{t1}:msg:acme:m1","type":"hash","value":{"body":"{\\"content\\":\\"[EMAIL]\\"}"}}',
        '{"table":"memory_messages","row":{"content":"write to bob@example.org"}}',
        '{"key":"{t1}:thread-drain:1","value":{"timestamp":"1795306872718","processedOn":"1795306872833"}}',
        '{"thread":{"uuid":"dc492085-8289-4897-bf79-91f990b2aca2"},"de":"acme/f52e751b9188654715923b01af9a1bae"}',
        '{"row":{"content":"card 1234567890128 then 4111111111111111"}}',
      ].join('\n'),
    );
    await writeFile(join(dir, 'ignored.txt'), 'ann@example.com');
    const result = await scanLogs(dir);
    expect(result.logs).to.deep.equal({ files: 2, lines: 5 });
    expect(result.dumps).to.deep.equal({ files: 1, lines: 5 });
    expect(result.findings).to.deep.equal([
      { file: 'api-1.log', line: 2, types: ['email'] },
      { file: 'redis-_t1_.dump', line: 2, types: ['email'] },
      { file: 'redis-_t1_.dump', line: 5, types: ['card'] },
      { file: 'worker-2.log', line: 2, types: ['phone'] },
      { file: 'worker-2.log', line: 3, types: ['card'] },
    ]);
  });
});
