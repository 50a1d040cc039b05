import { expect } from 'chai';
import { Counter, Registry } from 'prom-client';
import { startMetricsServer, type MetricsServer } from './metrics-server.ts';

describe('startMetricsServer', () => {
  let server: MetricsServer;
  let url: string;
  let ready = true;

  before(async () => {
    const registry = new Registry();
    new Counter({ name: 'test_things_total', help: 'Things.', registers: [registry] }).inc();
    server = await startMetricsServer({ registry, port: 0, ready: () => Promise.resolve(ready) });
    url = `http://127.0.0.1:${String(server.port)}`;
  });

  after(async () => {
    await server.close();
  });

  async function get(path: string, method = 'GET') {
    const res = await fetch(`${url}${path}`, { method });
    return { status: res.status, headers: res.headers, body: await res.text() };
  }

  it('serves Prometheus text on /metrics', async () => {
    const res = await get('/metrics');
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    expect(res.body).to.include('test_things_total 1');
  });

  it('answers /healthz, /readyz, unknown paths and other methods', async () => {
    expect(await get('/healthz')).to.include({ status: 200, body: '{"status":"ok"}' });
    ready = false;
    expect(await get('/readyz')).to.include({ status: 503, body: '{"ready":false}' });
    ready = true;
    expect(await get('/readyz')).to.include({ status: 200, body: '{"ready":true}' });
    expect((await get('/nope')).status).to.equal(404);
    expect((await get('/metrics', 'POST')).status).to.equal(405);
  });

  it("sends helmet's security headers on every answer, errors included", async () => {
    for (const [path, method] of [
      ['/metrics', 'GET'],
      ['/healthz', 'GET'],
      ['/nope', 'GET'],
      ['/metrics', 'POST'],
    ] as const) {
      const { headers } = await get(path, method);
      expect(headers.get('x-content-type-options'), path).to.equal('nosniff');
      expect(headers.get('content-security-policy'), path).to.include("default-src 'self'");
      expect(headers.get('content-security-policy'), path).to.include("frame-ancestors 'self'");
      expect(headers.get('strict-transport-security'), path).to.match(/^max-age=\d+/);
      expect(headers.get('x-frame-options'), path).to.equal('SAMEORIGIN');
      expect(headers.get('referrer-policy'), path).to.equal('no-referrer');
      expect(headers.get('cross-origin-resource-policy'), path).to.equal('same-origin');
    }
  });
});
