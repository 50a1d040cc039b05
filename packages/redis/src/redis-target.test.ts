import { expect } from 'chai';
import { describeRedisTarget, parseRedisTarget } from './redis-target.ts';

describe('parseRedisTarget', () => {
  it('reads one server from REDIS_URL', () => {
    expect(parseRedisTarget('redis://127.0.0.1:6379/0')).to.deep.equal({
      kind: 'single',
      url: 'redis://127.0.0.1:6379/0',
    });
    expect(parseRedisTarget('rediss://u:p@cache.example:6380').kind).to.equal('single');
  });

  it('reads a cluster from a redis+cluster:// URL, with credentials and TLS', () => {
    expect(parseRedisTarget('redis+cluster://127.0.0.1:7000,127.0.0.1:7001')).to.deep.equal({
      kind: 'cluster',
      nodes: [
        { host: '127.0.0.1', port: 7000 },
        { host: '127.0.0.1', port: 7001 },
      ],
      tls: false,
    });
    expect(parseRedisTarget('rediss+cluster://app:s%40cret@[::1]:7000/')).to.deep.equal({
      kind: 'cluster',
      nodes: [{ host: '::1', port: 7000 }],
      tls: true,
      username: 'app',
      password: 's@cret',
    });
  });

  it('reads a cluster from REDIS_CLUSTER_NODES, taking credentials from REDIS_URL', () => {
    expect(parseRedisTarget('rediss://:pw@ignored:1', 'a:7000, b:7001')).to.deep.equal({
      kind: 'cluster',
      nodes: [
        { host: 'a', port: 7000 },
        { host: 'b', port: 7001 },
      ],
      tls: true,
      password: 'pw',
    });
    expect(parseRedisTarget(undefined, 'a:7000').kind).to.equal('cluster');
  });

  it('names the variable at fault', () => {
    expect(() => parseRedisTarget(undefined)).to.throw(/^REDIS_URL: required/);
    expect(() => parseRedisTarget('http://x')).to.throw(/^REDIS_URL: must be redis:\/\//);
    expect(() => parseRedisTarget('redis+cluster://a:70000')).to.throw(
      /^REDIS_URL: "a:70000" is not host:port/,
    );
    expect(() => parseRedisTarget(undefined, 'a:1,b')).to.throw(
      /^REDIS_CLUSTER_NODES: "b" is not host:port/,
    );
  });

  it('describes a target without its credentials', () => {
    expect(describeRedisTarget(parseRedisTarget('redis://u:secret@h:1/2'))).to.equal(
      'redis://h:1/2',
    );
    expect(describeRedisTarget(parseRedisTarget('redis+cluster://u:secret@h:1,k:2'))).to.equal(
      'cluster h:1,k:2',
    );
  });
});
