import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { createLogger, type Logger, type LoggerOptions } from './create-logger.ts';

const EMAIL = 'jane.doe@example.com';
const PHONE = '(415) 555-2671';
const CARD = '4111 1111 1111 1111';

interface Capture {
  logger: Logger;
  /** Waits for winston's stream pipeline to flush, then returns the raw output so far. */
  output(): Promise<string>;
  /** Same, parsed line by line. */
  lines(): Promise<Record<string, unknown>[]>;
}

function capture(options: Partial<LoggerOptions> = {}): Capture {
  const stream = new PassThrough();
  let raw = '';
  stream.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
  const logger = createLogger({ service: 'test-svc', stream, ...options });
  const output = async (): Promise<string> => {
    await new Promise((resolve) => setImmediate(resolve));
    return raw;
  };
  const lines = async (): Promise<Record<string, unknown>[]> => {
    const text = await output();
    expect(text.endsWith('\n'), 'output ends with a newline').to.equal(true);
    return text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  return { logger, output, lines };
}

function expectNoPii(text: string): void {
  for (const pii of [EMAIL, PHONE, CARD, '4111111111111111', '555-2671']) {
    expect(text).to.not.include(pii);
  }
}

describe('createLogger', () => {
  it('writes one JSON object per line with timestamp, level, service and message first', async () => {
    const c = capture();
    c.logger.info('first', { jobId: 'j-1', attempt: 2 });
    c.logger.warn('second');
    const lines = await c.lines();

    expect(lines).to.have.length(2);
    const [first, second] = lines;
    expect(Object.keys(first!)).to.deep.equal([
      'timestamp',
      'level',
      'service',
      'message',
      'jobId',
      'attempt',
    ]);
    expect(first).to.include({ level: 'info', service: 'test-svc', message: 'first', attempt: 2 });
    expect(new Date(first!.timestamp as string).toISOString()).to.equal(first!.timestamp);
    expect(second).to.include({ level: 'warn', service: 'test-svc', message: 'second' });
  });

  it('drops lines below the level, which defaults to info', async () => {
    const c = capture();
    c.logger.debug('hidden');
    c.logger.info('shown');
    expect((await c.lines()).map((l) => l.message)).to.deep.equal(['shown']);

    const verbose = capture({ level: 'debug' });
    verbose.logger.debug('shown too');
    expect((await verbose.lines()).map((l) => l.message)).to.deep.equal(['shown too']);
  });

  it('hands the lines of one event-loop turn to the stream in one write, in order', async () => {
    const stream = new PassThrough();
    const writes: string[] = [];
    const write = stream.write.bind(stream);
    stream.write = ((chunk: string | Buffer, ...rest: never[]) => {
      writes.push(String(chunk));
      return write(chunk, ...rest);
    }) as typeof stream.write;
    const logger = createLogger({ service: 'test-svc', stream });
    logger.info('one');
    logger.warn('two');
    logger.info('three');
    await new Promise((resolve) => setImmediate(resolve));
    logger.info('four');
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).to.have.length(2);
    const messages = writes.map((w) =>
      w
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => (JSON.parse(l) as { message: string }).message),
    );
    expect(messages).to.deep.equal([['one', 'two', 'three'], ['four']]);
  });

  it('follows a level changed at run time, for the logger and its children', async () => {
    const c = capture();
    const child = c.logger.child({ requestId: 'r1' });
    child.http('before');
    c.logger.level = 'http';
    child.http('after');
    c.logger.http('parent');
    c.logger.level = 'warn';
    c.logger.info('quiet');
    expect((await c.lines()).map((l) => l.message)).to.deep.equal(['after', 'parent']);
  });

  it('redacts email, phone and card numbers in the message', async () => {
    const c = capture();
    c.logger.info(`contact ${EMAIL} or ${PHONE}, card ${CARD}`);
    const [line] = await c.lines();
    expect(line!.message).to.equal('contact [EMAIL] or [PHONE], card [CARD]');
    expectNoPii(await c.output());
  });

  it('redacts printf-style arguments', async () => {
    const c = capture();
    c.logger.info('user %s called from %s', EMAIL, PHONE);
    const [line] = await c.lines();
    expect(line!.message).to.equal('user [EMAIL] called from [PHONE]');
  });

  it('redacts nested meta values', async () => {
    const c = capture();
    c.logger.info('message received', {
      tenant: 'acme',
      payload: { from: EMAIL, parts: [{ text: `call ${PHONE}` }, { text: `pay ${CARD}` }] },
      at: new Date('2024-05-01T10:30:00.000Z'),
    });
    const [line] = await c.lines();
    expect(line).to.deep.include({
      tenant: 'acme',
      payload: { from: '[EMAIL]', parts: [{ text: 'call [PHONE]' }, { text: 'pay [CARD]' }] },
      at: '2024-05-01T10:30:00.000Z',
    });
    expectNoPii(await c.output());
  });

  it('serializes and redacts an Error passed as meta', async () => {
    const c = capture();
    const err = new Error(`backend rejected ${EMAIL} / ${PHONE} / ${CARD}`);
    c.logger.error('write failed', { err });
    const [line] = await c.lines();
    const out = line!.err as Record<string, unknown>;
    expect(line).to.include({ level: 'error', message: 'write failed' });
    expect(out.name).to.equal('Error');
    expect(out.message).to.equal('backend rejected [EMAIL] / [PHONE] / [CARD]');
    expect(out.stack).to.be.a('string').that.includes('Error: backend rejected [EMAIL]');
    expectNoPii(await c.output());
  });

  it('redacts an Error logged directly or as the second argument', async () => {
    const c = capture();
    c.logger.error(new Error(`boom for ${EMAIL}`));
    c.logger.error('failed:', new Error(`card ${CARD}`));
    const [direct, second] = await c.lines();
    expect(direct).to.include({ message: `boom for [EMAIL]`, service: 'test-svc' });
    expect(direct!.stack).to.be.a('string').that.includes('boom for [EMAIL]');
    expect(second).to.include({ message: 'failed: card [CARD]' });
    expectNoPii(await c.output());
  });

  it('survives circular meta', async () => {
    const c = capture();
    const meta: Record<string, unknown> = { email: EMAIL };
    meta.self = meta;
    c.logger.info('cyclic', { meta });
    const [line] = await c.lines();
    expect(line!.meta).to.deep.equal({ email: '[EMAIL]', self: '[Circular]' });
  });

  it('keeps child logger meta on every line, redacted too', async () => {
    const c = capture();
    const child = c.logger.child({ requestId: 'req-42', user: EMAIL });
    child.info('handled', { status: 200 });
    child.child({ step: 'commit' }).warn(`retrying ${PHONE}`);
    const [first, second] = await c.lines();
    expect(first).to.include({
      service: 'test-svc',
      requestId: 'req-42',
      user: '[EMAIL]',
      message: 'handled',
      status: 200,
    });
    expect(second).to.include({
      requestId: 'req-42',
      step: 'commit',
      level: 'warn',
      message: 'retrying [PHONE]',
    });
    expectNoPii(await c.output());
  });

  it('writes bigint meta as a string', async () => {
    const c = capture();
    c.logger.info('big', { offset: 12345678901234567890n });
    const [line] = await c.lines();
    expect(line!.offset).to.equal('12345678901234567890');
  });
});
