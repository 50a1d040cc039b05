import { requestDrain, type DrainQueue } from '@memfleet/jobs/thread-drain';
import type { MessageStatus, Outbox } from '@memfleet/outbox/outbox';

/** A dead-lettered message as an operator sees it. */
export interface DeadLetter {
  clientMessageId: string;
  threadId: string;
  seq: number;
  attempts: number;
  deadAt: Date;
  error: string;
}

/** Which dead letters a command works on. */
export type DeadLetterSelection = { all: true } | { threadId: string } | { ids: readonly string[] };

/** Per-thread outcome of a replay. */
export interface ReplaySummary {
  threadId: string;
  replayed: number;
  notDead: number;
  bodyGone: number;
}

const PAGE = 1000;

/** Listing, replay and purge of a tenant's dead letters. */
export function createDeadLetterTools(deps: {
  outbox: Outbox;
  queue: DrainQueue;
  now?: () => number;
}) {
  const { outbox } = deps;
  const now = deps.now ?? Date.now;

  async function describe(
    tenant: string,
    entries: readonly { clientMessageId: string; deadAt?: Date }[],
  ): Promise<DeadLetter[]> {
    const out: DeadLetter[] = [];
    for (const e of entries) {
      const s: MessageStatus | undefined = await outbox.status(tenant, e.clientMessageId);
      if (s === undefined || s.status !== 'dead') continue;
      out.push({
        clientMessageId: e.clientMessageId,
        threadId: s.threadId,
        seq: s.seq,
        attempts: s.attempts,
        deadAt: e.deadAt ?? new Date(0),
        error: s.error ?? '',
      });
    }
    return out;
  }

  async function everyDeadLetter(tenant: string): Promise<DeadLetter[]> {
    const all: DeadLetter[] = [];
    for (let offset = 0; ; offset += PAGE) {
      const page = await outbox.deadLetters(tenant, offset, PAGE);
      all.push(...(await describe(tenant, page)));
      if (page.length < PAGE) return all;
    }
  }

  async function select(tenant: string, selection: DeadLetterSelection): Promise<DeadLetter[]> {
    if ('ids' in selection) {
      return describe(
        tenant,
        selection.ids.map((clientMessageId) => ({ clientMessageId })),
      );
    }
    const all = await everyDeadLetter(tenant);
    return 'threadId' in selection ? all.filter((d) => d.threadId === selection.threadId) : all;
  }

  /** Dead letters grouped by thread, each thread's in accept order. */
  function byThread(letters: readonly DeadLetter[]): Map<string, DeadLetter[]> {
    const groups = new Map<string, DeadLetter[]>();
    for (const d of letters) groups.set(d.threadId, [...(groups.get(d.threadId) ?? []), d]);
    for (const list of groups.values()) list.sort((a, b) => a.seq - b.seq);
    return groups;
  }

  return {
    /** Dead letters of a tenant, oldest first. */
    async list(tenant: string, offset: number, limit: number): Promise<DeadLetter[]> {
      return describe(tenant, await outbox.deadLetters(tenant, offset, limit));
    },

    select,

    /**
     * Puts the selected dead letters back at the end of their threads' outboxes in accept order
     * and queues the drains. With `dryRun`, only says what it would do.
     */
    async replay(
      tenant: string,
      selection: DeadLetterSelection,
      options: { dryRun: boolean; onThread?: (summary: ReplaySummary) => void },
    ): Promise<ReplaySummary[]> {
      const summaries: ReplaySummary[] = [];
      for (const [threadId, letters] of byThread(await select(tenant, selection))) {
        const summary: ReplaySummary = { threadId, replayed: 0, notDead: 0, bodyGone: 0 };
        if (options.dryRun) {
          summary.replayed = letters.length;
        } else {
          const results = await outbox.replayDead(
            tenant,
            threadId,
            letters.map((d) => d.clientMessageId),
            now(),
          );
          for (const r of results) {
            if (r === 'replayed') summary.replayed++;
            else if (r === 'not_dead') summary.notDead++;
            else summary.bodyGone++;
          }
          if (summary.replayed > 0) await requestDrain(deps.queue, tenant, threadId);
        }
        summaries.push(summary);
        options.onThread?.(summary);
      }
      return summaries;
    },

    /** Forgets the selected dead letters for good; returns how many (or would, with `dryRun`). */
    async purge(
      tenant: string,
      selection: DeadLetterSelection,
      options: { dryRun: boolean },
    ): Promise<number> {
      const letters = await select(tenant, selection);
      if (options.dryRun) return letters.length;
      return outbox.purgeDead(
        tenant,
        letters.map((d) => d.clientMessageId),
      );
    },
  };
}
