import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * The worker's code. Plain CommonJS given as a string, so the same code runs whether Herald runs
 * from `dist/` or from TypeScript sources in the tests (a worker file would exist in one only).
 */
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
const timer = setInterval(() => db.pragma('wal_checkpoint(PASSIVE)'), workerData.intervalMs);
parentPort.once('message', () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

/**
 * Copies the SQLite write-ahead log into the database file from a worker thread, on its own
 * connection, a little at a time. SQLite otherwise does all of it inside whichever commit grows the
 * WAL past 1,000 pages, on the event loop: that publish, and every request queued behind it, waited
 * for 4 MB of page writes and their fsync, the tail of the publish-to-delivery latency. That commit
 * still checkpoints (only it can finish a checkpoint while nothing writes, which lets the next commit
 * start the WAL from its beginning, so it stays at 4 MB), but finds the pages already copied.
 * A passive checkpoint never blocks the writer.
 */
export class Checkpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;

  constructor(file: string, intervalMs: number) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(workerSource, { eval: true, workerData: { file, driver, intervalMs } });
    // Nothing depends on it: without it, commits do all the copying again, as before.
    this.worker.on('error', () => {});
    // It never keeps the process alive by itself: a store nobody closed must not hang an exit.
    this.worker.unref();
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
  }

  /** Stops after any checkpoint in progress; the writer's own close then checkpoints the rest. */
  async close(): Promise<void> {
    // Held again while it stops, or a process with nothing else to do would exit before it has.
    this.worker.ref();
    this.worker.postMessage('stop');
    await this.exited;
  }
}
