import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './free-port.ts';
import { startRedis, type RedisServer } from './redis-server.ts';

const run = promisify(execFile);

/** A private Redis Cluster of masters on loopback ports, for tests. */
export interface RedisCluster {
  /** `redis+cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,…`, as memfleet's REDIS_URL takes it. */
  readonly url: string;
  readonly nodes: readonly RedisServer[];
  /** Stops every node and removes their directories. */
  stop(): Promise<void>;
}

async function clusterOk(port: number): Promise<boolean> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const info = (await client.call('CLUSTER', 'INFO')) as string;
    return /cluster_state:ok/.test(info) && /cluster_slots_assigned:16384/.test(info);
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/**
 * Starts `masters` (default 3) `redis-server --cluster-enabled yes` processes on free loopback
 * ports, joins them with `redis-cli --cluster create` (no replicas) and resolves once every node
 * reports `cluster_state:ok` with all 16384 slots assigned.
 */
export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    for (let i = 0; i < masters; i++) {
      nodes.push(
        await startRedis({
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-node-timeout',
            '5000',
            '--cluster-port',
            String(await freePort()),
          ],
        }),
      );
    }
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    );
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ok = await Promise.all(nodes.map((n) => clusterOk(n.port)));
      if (ok.every(Boolean)) break;
      if (Date.now() > deadline)
        throw new Error('the Redis Cluster did not reach cluster_state:ok');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (err: unknown) {
    await stop();
    throw err;
  }
  return {
    url: `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    nodes,
    stop,
  };
}
