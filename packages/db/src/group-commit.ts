/**
 * A DataLoader schedule that sends a batch at once while fewer than `maxInFlight` of its batches
 * are at Postgres, and otherwise holds it (still open to new calls) until one answers: group
 * commit. A lone call goes out in the same turn; under load, the calls that arrive while a
 * statement runs leave together in the next one.
 */
export function groupCommit(maxInFlight: number): {
  schedule: (dispatch: () => void) => void;
  run: <T>(batch: () => Promise<T>) => Promise<T>;
} {
  let inFlight = 0;
  const held: (() => void)[] = [];
  return {
    schedule(dispatch) {
      if (inFlight < maxInFlight) {
        inFlight++;
        void Promise.resolve().then(() => process.nextTick(dispatch));
      } else {
        held.push(dispatch);
      }
    },
    async run(batch) {
      try {
        return await batch();
      } finally {
        const next = held.shift();
        if (next === undefined) inFlight--;
        else next();
      }
    },
  };
}

/**
 * Characters of data one shared statement carries at most (about 4 MiB): the calls of a group
 * beyond it go in the next statement, so that a group of large batches never makes one huge
 * statement (memory on both sides, the statement timeout).
 */
export const MAX_STATEMENT_CHARS = 4 * 1024 * 1024;

/**
 * Splits `items`, in order, into runs whose `weight` adds up to at most `max`; an item heavier
 * than `max` makes a run of its own.
 */
export function chunksOf<T>(items: readonly T[], weight: (item: T) => number, max: number): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let total = 0;
  for (const item of items) {
    const w = weight(item);
    if (current.length > 0 && total + w > max) {
      chunks.push(current);
      current = [];
      total = 0;
    }
    current.push(item);
    total += w;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
