/** What a client received so far, and waits for it to satisfy a condition (both test clients use it). */
export class Received<T> {
  readonly items: T[] = [];
  private waiters: (() => void)[] = [];

  constructor(private readonly describe: (items: T[]) => string) {}

  push(item: T): void {
    this.items.push(item);
    for (const w of [...this.waiters]) w();
  }

  /** Resolves when `pred` holds over the items so far; rejects after `ms`. */
  waitFor(pred: (items: T[]) => boolean, ms = 5000): Promise<void> {
    if (pred(this.items)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`timed out after ${ms} ms; got ${this.describe(this.items)}`));
      }, ms);
      const check = () => {
        if (!pred(this.items)) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve();
      };
      this.waiters.push(check);
    });
  }
}
