import { setImmediate as nextTurn } from 'node:timers/promises';

interface Waiting<T, R> {
  item: T;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit: the items added in one turn of the event loop share one transaction (one commit, one
 * fsync), and so do those added while a transaction runs, at most `maxBatch` to a transaction.
 * Transactions run one at a time, in the order their items were added. Each caller is answered only
 * after its transaction committed; when one fails, every caller in it gets the error.
 */
export class GroupCommit<T, R> {
  private queue: Waiting<T, R>[] = [];
  /** The running commit loop, if any. */
  private running: Promise<void> | undefined;

  /** `commit` writes one batch in one transaction and answers each item, in order. */
  constructor(
    private readonly commit: (batch: T[]) => Promise<R[]>,
    private readonly maxBatch = Infinity,
  ) {}

  /** Resolves with the item's answer once its transaction has committed. */
  add(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.running ??= this.run();
    });
  }

  /** Resolves once every item added so far is committed (or failed): before closing the database. */
  async drain(): Promise<void> {
    while (this.running) await this.running;
  }

  private async run(): Promise<void> {
    // Let everything added in this turn of the event loop join the first transaction.
    await nextTurn();
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        const results = await this.commit(batch.map((w) => w.item));
        batch.forEach((w, i) => w.resolve(results[i]!));
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    this.running = undefined;
  }
}
