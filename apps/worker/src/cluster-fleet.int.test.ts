import { expect } from 'chai';
import { Cluster } from 'ioredis';
import { httpRequestJson } from '@memfleet/testing/http-request';
import { startRedisCluster, type RedisCluster } from '@memfleet/testing/redis-cluster';
import { Fleet, KEY, waitFor } from './fleet-harness.ts';

describe('fleet on a Redis Cluster (3 local masters)', function () {
  this.timeout(180_000);
  const fleet = new Fleet();
  let cluster: RedisCluster;

  before(async () => {
    cluster = await startRedisCluster(3);
    await fleet.start({ REDIS_URL: cluster.url, WORKER_CONCURRENCY: '8' }, 2);
    await fleet.addReader();
    // The test's client reaches every master now, not inside the test.
    await fleet.redis.ping();
    await Promise.all(fleet.redisNodes().map((node) => node.ping()));
  });
  after(async () => {
    await fleet.stop();
    await cluster.stop();
  });

  it('writes 20 threads x 50 messages in order, once each; every key in the one slot of the prefix', async () => {
    expect(fleet.redis).to.be.instanceOf(Cluster);
    const expected = new Map<string, string[]>();
    await Promise.all(
      Array.from({ length: 20 }, async (_, t) => {
        const threadId = `cl-${t}`;
        const ids = Array.from({ length: 50 }, (_, n) => `${threadId}-${n}`);
        expected.set(threadId, ids);
        for (let part = 0; part < 5; part++) {
          const res = await fleet.post(
            threadId,
            ids.slice(part * 10, part * 10 + 10).map((id) => ({
              client_message_id: id,
              role: 'user',
              content: id,
            })),
          );
          expect(res.status).to.equal(202);
        }
      }),
    );
    await waitFor(
      '1000 messages written',
      async () => (await fleet.ledgerCount('written', 'cl-')) === 1000,
      120_000,
    );
    await fleet.expectStoredInOrder(expected);
    expect(await fleet.ledgerCount('dead')).to.equal(0);
    // A resend is a duplicate, through the cluster's dedupe.
    const again = await fleet.post('cl-0', [
      { client_message_id: 'cl-0-0', role: 'user', content: 'x' },
    ]);
    expect((again.body as { results: { status: string }[] }).results[0]?.status).to.equal(
      'duplicate',
    );

    // Every memfleet key lives on one master: the prefix's hash tag puts them in one slot.
    const holding = [];
    for (const node of (fleet.redis as Cluster).nodes('master')) {
      if ((await node.keys(`${fleet.prefix}*`)).length > 0) holding.push(node.options.port);
    }
    expect(holding).to.have.length(1);

    const read = await httpRequestJson(
      `${fleet.readerUrl}/v1/threads/cl-3/context?user_id=user-of-cl-3`,
      {
        headers: { authorization: `Bearer ${KEY}` },
      },
    );
    expect(read.json).to.deep.include({ used: true, source: 'postgres' });
  });
});
