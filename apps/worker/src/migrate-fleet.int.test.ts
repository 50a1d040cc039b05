import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { startAppProcess, type AppProcess } from '@memfleet/testing/app-process';
import { httpRequestJson } from '@memfleet/testing/http-request';
import { startZepEmulator, type ZepEmulator } from '@memfleet/testing/zep-emulator';
import { Fleet, waitFor } from './fleet-harness.ts';
import { ZEP_KEY, zepEnv } from './zep-fleet-env.ts';

const CLI = 'apps/cli/src/main.ts';
const USERS = 1000;
const MESSAGES = 5000;
const DUPLICATES = 150;

/** A small deterministic PRNG (mulberry32), so the export is the same on every run. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface ExportMemory {
  id: string;
  memory: string;
  user_id: string;
  run_id?: string;
  session_id?: string;
  role?: string;
  metadata: Record<string, unknown>;
  created_at: string;
}

/** What the test expects in Zep, worked out from the generated records alone. */
interface Expected {
  /** Per memfleet thread: its user and its client message ids in created_at order. */
  threads: Map<string, { userId: string; ids: string[] }>;
  /** Per client message id: the original record. */
  records: Map<string, ExportMemory>;
  /** Records whose memory or metadata carries an e-mail, a phone or a card number. */
  withPii: number;
}

const PII = /@example\.(com|org)|415 555|4111 1111|5555 5555/;

/**
 * A mem0 export of USERS users and MESSAGES memories over 1–3 runs per user (a tenth of the users
 * also have memories without a run), a fifth of them with PII, DUPLICATES records repeated, all
 * shuffled so export order is not created_at order. Runs are named `run_id` or `session_id`,
 * roles come as `role`, as `metadata.role`, or not at all.
 */
function generateExport(): { records: ExportMemory[]; expected: Expected } {
  const rand = random(42);
  const base = Date.parse('2025-01-01T00:00:00Z');
  const records: ExportMemory[] = [];
  const expected: Expected = { threads: new Map(), records: new Map(), withPii: 0 };
  for (let k = 0; k < MESSAGES; k++) {
    const u = k % USERS;
    const j = Math.floor(k / USERS);
    const userId = `user-${u}`;
    const runs = 1 + (u % 3);
    const run = u % 10 === 0 && j === 4 ? undefined : `run-${u}-${j % runs}`;
    let memory = `memory ${k} of user ${u} likes topic ${k % 37}`;
    if (k % 10 === 0) memory = `write to ${userId}.${j}@example.com about topic ${k % 37}`;
    if (k % 10 === 3) memory = `call me at +1 415 555 01${String(k % 100).padStart(2, '0')}`;
    if (k % 10 === 6)
      memory = `my card is ${k % 20 === 6 ? '4111 1111 1111 1111' : '5555 5555 5555 4444'}`;
    const metadata: Record<string, unknown> = { source: 'mem0-import', topic: k % 37 };
    if (k % 25 === 1) metadata.contact = `contact-${u}@example.org`;
    const role = k % 2 === 0 ? 'user' : 'assistant';
    if (k % 4 === 3) metadata.role = role;
    const ms = base + u * 3_600_000 + j * 60_000 + Math.floor(rand() * 30_000);
    const record: ExportMemory = {
      id: `00000000-0000-4000-8000-${k.toString(16).padStart(12, '0')}`,
      memory,
      user_id: userId,
      ...(run === undefined ? {} : u % 2 === 0 ? { run_id: run } : { session_id: run }),
      ...(k % 4 === 1 ? { role } : {}),
      metadata,
      // Some with an offset: ordering must go by the instant, not the text.
      created_at:
        u % 4 === 0
          ? new Date(ms + 7_200_000).toISOString().replace('Z', '+02:00')
          : new Date(ms).toISOString(),
    };
    records.push(record);
    const cmid = `mem0-${record.id}`;
    expected.records.set(cmid, record);
    if (PII.test(memory) || PII.test(JSON.stringify(metadata))) expected.withPii += 1;
    const threadId = `mem0-${run ?? userId}`;
    const thread = expected.threads.get(threadId) ?? { userId, ids: [] };
    thread.ids.push(cmid);
    expected.threads.set(threadId, thread);
  }
  const at = (cmid: string) => Date.parse(expected.records.get(cmid)?.created_at ?? '');
  for (const thread of expected.threads.values()) thread.ids.sort((a, b) => at(a) - at(b));
  for (let d = 0; d < DUPLICATES; d++) {
    const original = records[Math.floor(rand() * MESSAGES)];
    if (original !== undefined) records.push(structuredClone(original));
  }
  for (let i = records.length - 1; i > 0; i--) {
    const n = Math.floor(rand() * (i + 1));
    [records[i], records[n]] = [records[n] as ExportMemory, records[i] as ExportMemory];
  }
  return { records, expected };
}

/** The keys under the fleet's prefix, without BullMQ's own timers that come and go on their own. */
async function keyNames(fleet: Fleet): Promise<string[]> {
  const keys = await fleet.redis.keys(`${fleet.prefix}*`);
  return keys.filter((k) => !k.endsWith(':stalled-check')).sort();
}

describe('memfleet migrate mem0-to-zep: a generated export into a fleet on the Zep emulator', function () {
  this.timeout(180_000);
  const fleet = new Fleet();
  let emu: ZepEmulator;
  let dir: string;
  let file: string;
  const { records, expected } = generateExport();
  const cliEnv = (): Record<string, string> => ({
    REDIS_URL: fleet.env.REDIS_URL ?? '',
    REDIS_KEY_PREFIX: fleet.prefix,
    ZEP_API_URL: emu.url,
    ZEP_API_KEY: ZEP_KEY,
  });
  const startCli = (...args: string[]): AppProcess =>
    startAppProcess(CLI, { name: 'memfleet', args, env: cliEnv() });
  async function cli(...args: string[]): Promise<{ code: number | null; out: string }> {
    const proc = startCli(...args);
    const code = await proc.waitForExit(150_000);
    return { code, out: proc.lines().join('\n') };
  }
  const migrate = (...args: string[]) =>
    cli('migrate', 'mem0-to-zep', '--tenant', 'acme', '--file', file, ...args);
  /** A row `│ name │ n │` of a summary table. */
  const row = (out: string, name: string): number => {
    const m = new RegExp(`│ ${name} +│ (\\d+) +│`).exec(out);
    if (m === null) throw new Error(`no row "${name}" in:\n${out}`);
    return Number(m[1]);
  };

  before(async () => {
    emu = await startZepEmulator({ apiKeys: [ZEP_KEY] });
    await fleet.start(zepEnv(emu, { WORKER_CONCURRENCY: '32' }), 2);
    dir = await mkdtemp(join(tmpdir(), 'memfleet-migrate-'));
    file = join(dir, 'export.json');
    // The shape mem0's getAll answers: { count, next, previous, results }.
    await writeFile(
      file,
      JSON.stringify({ count: records.length, next: null, previous: null, results: records }),
    );
  });
  after(async () => {
    await fleet.stop();
    await emu.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('--dry-run prints the plan and writes nothing', async () => {
    const before = await keyNames(fleet);
    const dry = await migrate('--dry-run');
    expect(dry.code, dry.out).to.equal(0);
    expect(dry.out).to.include('dry run: nothing was written');
    expect(row(dry.out, 'records')).to.equal(MESSAGES + DUPLICATES);
    expect(row(dry.out, 'users')).to.equal(USERS);
    expect(row(dry.out, 'threads')).to.equal(expected.threads.size);
    expect(row(dry.out, 'messages')).to.equal(MESSAGES);
    expect(row(dry.out, 'duplicates in the export')).to.equal(DUPLICATES);
    expect(row(dry.out, 'rejected')).to.equal(0);
    expect(await keyNames(fleet)).to.deep.equal(before);
    expect(await fleet.redis.keys(`${fleet.prefix}:msg:*`)).to.deep.equal([]);
    expect(emu.threadIds()).to.deep.equal([]);
  });

  it('killed partway and run again, lands every message once, in order, redacted; --validate finds no difference', async () => {
    const first = startCli('migrate', 'mem0-to-zep', '--tenant', 'acme', '--file', file);
    const total = MESSAGES + DUPLICATES;
    await waitFor(
      'the migration to be partway',
      () =>
        first.lines().some((line) => {
          const m = /^migrate: (\d+)\/(\d+) messages$/.exec(line);
          return m !== null && Number(m[2]) === total && Number(m[1]) >= total * 0.3;
        }),
      60_000,
    );
    await first.kill9();
    const cursorKeys = await fleet.redis.keys(`${fleet.prefix}:migrate:acme:*`);
    expect(cursorKeys).to.have.length(1);
    const done = await fleet.redis.scard(cursorKeys[0] ?? '');
    expect(done, 'threads finished before the kill').to.be.above(0);
    expect(done).to.be.below(expected.threads.size);

    const rerun = await migrate('--validate', '--wait', '120');
    expect(rerun.code, rerun.out).to.equal(0);
    expect(row(rerun.out, 'threads done by earlier runs')).to.equal(done);
    expect(row(rerun.out, 'threads differing in Zep')).to.equal(0);
    expect(rerun.out).to.include(
      `validation: 0 difference(s) over ${expected.threads.size} threads`,
    );

    // What Zep holds, checked here without the CLI: each thread exactly its messages, in
    // created_at order, in a thread of the right user, with the export's created_at.
    expect(await fleet.ledgerCount('written', 'mem0-')).to.equal(MESSAGES);
    expect(await fleet.ledgerCount('dead')).to.equal(0);
    const zepThreads = emu.threadIds().filter((t) => t.startsWith('acme:mem0-'));
    expect(zepThreads).to.have.length(expected.threads.size);
    let inZep = 0;
    let redacted = 0;
    for (const [threadId, { userId, ids }] of expected.threads) {
      const stored = emu.threadMessages(`acme:${threadId}`);
      inZep += stored.length;
      expect(
        stored.map((m) => m.metadata?.client_message_id),
        threadId,
      ).to.deep.equal(ids);
      expect(emu.threadOwner(`acme:${threadId}`)).to.equal(`acme:${userId}`);
      for (const m of stored) {
        const record = expected.records.get(String(m.metadata?.client_message_id));
        if (record === undefined) throw new Error(`unexpected message in ${threadId}`);
        expect(Date.parse(m.created_at)).to.equal(Date.parse(record.created_at));
        expect(m.metadata?.mem0_memory_id).to.equal(record.id);
        const text = m.content + JSON.stringify(m.metadata);
        expect(text, 'raw PII in Zep').to.not.match(PII);
        if (/\[(EMAIL|PHONE|CARD)\]/.test(text)) redacted += 1;
        else expect(m.content).to.equal(record.memory);
        expect(m.role).to.equal(
          record.role ?? (typeof record.metadata.role === 'string' ? record.metadata.role : 'user'),
        );
      }
    }
    expect(inZep).to.equal(MESSAGES);
    expect(redacted).to.equal(expected.withPii);
    expect(await fleet.redisText(`${fleet.prefix}*`)).to.not.match(PII);
  });

  it('--validate-only reports a thread Zep lost, and exits 1', async () => {
    const [threadId, thread] = [...expected.threads].find(([, t]) => t.ids.length > 1) ?? [];
    if (threadId === undefined || thread === undefined) throw new Error('no thread to damage');
    const deleted = await httpRequestJson(
      `${emu.url}/threads/${encodeURIComponent(`acme:${threadId}`)}`,
      { method: 'DELETE', headers: { authorization: `Api-Key ${ZEP_KEY}` } },
    );
    expect(deleted.status).to.equal(200);
    const res = await migrate('--validate-only', '--wait', '30');
    expect(res.code, res.out).to.equal(1);
    expect(res.out).to.include(`validation: 1 difference(s) over ${expected.threads.size} threads`);
    expect(res.out).to.match(
      new RegExp(
        `│ ${thread.userId} +│ ${threadId} +│ ${thread.ids.length} +│ 0 +│ ${thread.ids.length} +│ 0 +│ 0 +│ no such thread in Zep`,
      ),
    );
    expect(res.out).to.include('memfleet: 1 thread(s) differ in Zep');
  });
});
