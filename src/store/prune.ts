import { setImmediate as nextTurn } from 'node:timers/promises';
import type { PruneOptions } from './store.js';

/** Rows one retention transaction touches: small enough that a publish never waits long behind it. */
export const pruneBatch = 1000;
/** The `pruned_marks` row of the age horizon: '' is never a user id (they are at least one character). */
export const everyone = '';

/**
 * One store's retention transactions. Each batch is one transaction, which also raises the horizon
 * (`everyone`'s, or the user's) to the highest id it removed.
 */
export interface PruneSteps {
  /** Deletes up to `pruneBatch` notifications created before `cutoff`; resolves with how many. */
  oldBatch(cutoff: Date): Promise<number>;
  /** Deletes up to `pruneBatch` dead webhooks (out of attempts) created before `cutoff`; resolves with how many. */
  deadWebhooksBatch(cutoff: Date): Promise<number>;
  /** The users with more than `perUser` direct notifications. */
  usersOverCap(perUser: number): Promise<string[]>;
  /** The newest of the user's direct notifications beyond the newest `perUser`: it and everything below it go. */
  capEdge(user: string, perUser: number): Promise<number | undefined>;
  /**
   * Removes up to `pruneBatch` of the user's direct notifications at or below `upTo` from their view,
   * with their state; a notification itself goes once no other user has it. `unlinked` counts what
   * left the user's view (0: nothing left to do), `deleted` the notifications that went.
   */
  userBatch(user: string, upTo: number): Promise<{ unlinked: number; deleted: number }>;
}

/** Runs `batch` until it deletes less than a whole batch (or `signal` aborts); resolves with the total. */
async function inBatches(batch: () => Promise<number>, signal: AbortSignal | undefined): Promise<number> {
  let deleted = 0;
  while (!signal?.aborted) {
    const n = await batch();
    deleted += n;
    if (n < pruneBatch) break;
    await nextTurn();
  }
  return deleted;
}

/**
 * The retention run of `Store.prune`: by age first (notifications, then dead webhooks, which would
 * otherwise stay for ever), then each user over the cap, one batch at a time, with a turn of the
 * event loop between batches so publishes keep flowing. `signal` is checked before each batch.
 * Resolves with the number of notifications deleted.
 */
export async function prune(steps: PruneSteps, { olderThan, perUser, signal }: PruneOptions): Promise<number> {
  let deleted = 0;
  if (olderThan) {
    deleted += await inBatches(() => steps.oldBatch(olderThan), signal);
    await inBatches(() => steps.deadWebhooksBatch(olderThan), signal);
  }
  if (perUser) {
    for (const user of await steps.usersOverCap(perUser)) {
      const edge = await steps.capEdge(user, perUser);
      if (edge === undefined) continue;
      while (!signal?.aborted) {
        const batch = await steps.userBatch(user, edge);
        deleted += batch.deleted;
        if (batch.unlinked === 0) break;
        await nextTurn();
      }
    }
  }
  return deleted;
}
