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
