/** A Redis node address. */
export interface RedisNode {
  host: string;
  port: number;
}

/** Where memfleet's Redis is: one server (or a Sentinel-free primary), or a Redis Cluster. */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | {
      kind: 'cluster';
      /** Seed nodes; the client discovers the rest of the cluster from them. */
      nodes: RedisNode[];
      username?: string;
      password?: string;
      tls: boolean;
    };

const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)\/?$/;
const SINGLE_URL = /^rediss?:\/\//;

function parseNode(raw: string, where: string): RedisNode {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(raw.trim());
  const port = Number(m?.[2]);
  if (m?.[1] === undefined || !(port >= 1 && port <= 65_535)) {
    throw new Error(`${where}: "${raw.trim()}" is not host:port`);
  }
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

/**
 * Reads the Redis location from `REDIS_URL` and `REDIS_CLUSTER_NODES`: a cluster when
 * `REDIS_CLUSTER_NODES` lists seed nodes (`host:port,host:port`; credentials and TLS from
 * `REDIS_URL` if given) or when `REDIS_URL` is `redis+cluster://[user:pass@]host:port,host:port`
 * (`rediss+cluster://` for TLS); otherwise the one server of `REDIS_URL` (`redis://`,
 * `rediss://`). Throws an Error naming the variable at fault.
 */
export function parseRedisTarget(url: string | undefined, clusterNodes?: string): RedisTarget {
  const seeds = clusterNodes?.trim() ?? '';
  if (seeds !== '') {
    const nodes = seeds.split(',').map((n) => parseNode(n, 'REDIS_CLUSTER_NODES'));
    let auth: { username?: string; password?: string; tls: boolean } = { tls: false };
    if (url !== undefined && url !== '') {
      const base = parseRedisTarget(url);
      if (base.kind === 'cluster') {
        auth = {
          tls: base.tls,
          ...(base.username === undefined ? {} : { username: base.username }),
          ...(base.password === undefined ? {} : { password: base.password }),
        };
      } else {
        const u = new URL(base.url);
        auth = {
          tls: u.protocol === 'rediss:',
          ...(u.username === '' ? {} : { username: decodeURIComponent(u.username) }),
          ...(u.password === '' ? {} : { password: decodeURIComponent(u.password) }),
        };
      }
    }
    return { kind: 'cluster', nodes, ...auth };
  }
  if (url === undefined || url === '') {
    throw new Error('REDIS_URL: required (or REDIS_CLUSTER_NODES for a Redis Cluster)');
  }
  const cluster = CLUSTER_URL.exec(url);
  if (cluster !== null) {
    const [, scheme, user, pass, hosts = ''] = cluster;
    return {
      kind: 'cluster',
      nodes: hosts.split(',').map((n) => parseNode(n, 'REDIS_URL')),
      tls: scheme === 'rediss',
      ...(user === undefined || user === '' ? {} : { username: decodeURIComponent(user) }),
      ...(pass === undefined || pass === '' ? {} : { password: decodeURIComponent(pass) }),
    };
  }
  if (!SINGLE_URL.test(url)) {
    throw new Error(
      'REDIS_URL: must be redis://, rediss://, or redis+cluster://host:port,host:port for a cluster',
    );
  }
  try {
    new URL(url);
  } catch {
    throw new Error('REDIS_URL: not a valid URL');
  }
  return { kind: 'single', url };
}

/** The target without credentials, for logs and error messages. */
export function describeRedisTarget(target: RedisTarget): string {
  if (target.kind === 'cluster') {
    return `cluster ${target.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  }
  const u = new URL(target.url);
  u.username = '';
  u.password = '';
  return u.toString();
}
