import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { createZepFetcher, withQuery, type ZepFetcher } from './zep-fetcher.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

describe('zep fetcher (the SDK transport on undici)', () => {
  let server: Server;
  let base: string;
  let transport: ZepFetcher;
  let seen: Seen[];
  let answer: (req: IncomingMessage, res: ServerResponse) => void;

  beforeEach(async () => {
    seen = [];
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        });
        answer(req, res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
    transport = createZepFetcher();
  });

  afterEach(async () => {
    await transport.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
    answer = (_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
  };

  it('sends the method, query, resolved headers and JSON body, and parses a JSON answer', async () => {
    json(201, { uuid: 'm-1' }, { 'x-request-id': 'r-9' });
    const res = await transport.fetcher({
      url: `${base}/threads/t1/messages`,
      method: 'POST',
      contentType: 'application/json',
      headers: { Authorization: 'Api-Key k', 'X-Fn': () => 'from-fn', 'X-Skip': undefined },
      queryParameters: { lastn: '5', tag: ['a', 'b'], filter: { role: 'user' }, none: null },
      body: { messages: [{ role: 'user', content: 'hi' }] },
      requestType: 'json',
      timeoutMs: 5000,
      maxRetries: 0,
    });
    expect(seen).to.have.length(1);
    expect(seen[0]?.method).to.equal('POST');
    expect(seen[0]?.url).to.equal('/threads/t1/messages?lastn=5&tag=a&tag=b&filter%5Brole%5D=user');
    expect(seen[0]?.headers.authorization).to.equal('Api-Key k');
    expect(seen[0]?.headers['x-fn']).to.equal('from-fn');
    expect(seen[0]?.headers).to.not.have.property('x-skip');
    expect(seen[0]?.headers['content-type']).to.equal('application/json');
    expect(JSON.parse(seen[0]?.body ?? '')).to.deep.equal({
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(res.ok).to.equal(true);
    if (!res.ok) return;
    expect(res.body).to.deep.equal({ uuid: 'm-1' });
    expect(res.rawResponse.status).to.equal(201);
    expect(res.rawResponse.headers.get('x-request-id')).to.equal('r-9');
  });

  it('answers an error status with its parsed body and headers (a 429 keeps Retry-After)', async () => {
    json(429, { message: 'slow down' }, { 'retry-after': '2' });
    const res = await transport.fetcher({ url: `${base}/users`, method: 'GET' });
    expect(res.ok).to.equal(false);
    if (res.ok) return;
    expect(res.error).to.deep.equal({
      reason: 'status-code',
      statusCode: 429,
      body: { message: 'slow down' },
    });
    expect(res.rawResponse.headers.get('retry-after')).to.equal('2');
  });

  it('keeps a text error body as text, and reports a 2xx that is not JSON as non-json', async () => {
    answer = (_req, res) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('bad gateway');
    };
    const failed = await transport.fetcher({ url: `${base}/x`, method: 'GET' });
    expect(!failed.ok && failed.error).to.deep.equal({
      reason: 'status-code',
      statusCode: 502,
      body: 'bad gateway',
    });
    answer = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>');
    };
    const odd = await transport.fetcher({ url: `${base}/x`, method: 'GET' });
    expect(!odd.ok && odd.error).to.deep.equal({
      reason: 'non-json',
      statusCode: 200,
      rawBody: '<html>',
    });
    answer = (_req, res) => {
      res.writeHead(204);
      res.end();
    };
    const empty = await transport.fetcher({ url: `${base}/x`, method: 'DELETE' });
    expect(empty.ok && empty.body).to.equal(undefined);
  });

  it('reports an abort in the SDK words, a silent server as a timeout, a dropped socket as unknown', async () => {
    answer = () => undefined;
    const controller = new AbortController();
    const pending = transport.fetcher({
      url: `${base}/slow`,
      method: 'GET',
      abortSignal: controller.signal,
    });
    setTimeout(() => controller.abort(), 50);
    const aborted = await pending;
    expect(!aborted.ok && aborted.error).to.deep.equal({
      reason: 'unknown',
      errorMessage: 'The user aborted a request',
    });
    const silent = await transport.fetcher({ url: `${base}/slow`, method: 'GET', timeoutMs: 100 });
    expect(!silent.ok && silent.error).to.deep.equal({ reason: 'timeout' });
    answer = (req) => req.socket.destroy();
    const dropped = await transport.fetcher({ url: `${base}/drop`, method: 'POST', body: {} });
    expect(!dropped.ok && dropped.error).to.deep.equal({
      reason: 'unknown',
      errorMessage: 'other side closed',
    });
  });

  it('has every call in flight at once, however many drain slots ask (no connection cap)', async () => {
    const calls = 300;
    const held: ServerResponse[] = [];
    // The server answers nobody until every call has reached it.
    answer = (_req, res) => {
      held.push(res);
      if (held.length < calls) return;
      for (const r of held) {
        r.writeHead(200, { 'content-type': 'application/json' });
        r.end('{}');
      }
    };
    const results = await Promise.all(
      Array.from({ length: calls }, () =>
        transport.fetcher({ url: `${base}/wide`, method: 'GET', timeoutMs: 10_000 }),
      ),
    );
    expect(results.filter((r) => r.ok)).to.have.length(calls);
  });

  it('refuses a request body it cannot send, without sending anything', async () => {
    const res = await transport.fetcher({
      url: `${base}/file`,
      method: 'POST',
      body: Buffer.from('x'),
      requestType: 'file',
    });
    expect(!res.ok && res.error.reason).to.equal('unknown');
    expect(seen).to.have.length(0);
  });

  it('appends to a URL that already has a query, and leaves a URL alone without one', () => {
    expect(withQuery('http://h/p?a=1', { b: '2', c: ['x', 'y'] })).to.equal(
      'http://h/p?a=1&b=2&c=x&c=y',
    );
    expect(withQuery('http://h/p', {})).to.equal('http://h/p');
    expect(withQuery('http://h/p', undefined)).to.equal('http://h/p');
  });
});
