import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { errors, type HeraldError } from '../errors.js';
import type { WriterCalls } from './sqlite-writer.js';

/** Opens one database in the writer thread; its calls then come and go on `port`. */
export interface Open {
  file: string;
  sync: 'full' | 'normal';
  port: MessagePort;
}

/** One call of a `SqliteWriter` method, sent to the writer thread. */
export interface Call {
  id: number;
  method: keyof WriterCalls;
  args: unknown[];
}

export interface Failure {
  message: string;
  code?: string;
}

/** The writer thread's answer to one call, once the transaction holding it committed (or failed). */
export type Reply = { id: number; value: unknown } | { id: number; error: Failure };

/** On a database's port, main thread to writer thread: one group of calls (one transaction), or `close` once every call is answered. */
export type ToWriter = Call[] | 'close';

/** Calls committed in one transaction at most, so the first caller of a long queue is not kept waiting long. */
const maxGroup = 1000;
/** On a database's port, writer thread to main thread: `ready` (or why it could not open), then batches of replies. */
export type FromWriter = 'ready' | { openFailed: Failure } | Reply[];

// The thread's file beside this one: .ts when the tests run the sources, .js when Herald runs from dist/.
const workerFile = new URL(`./sqlite-writer-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

/**
 * One writer thread per process, whatever the number of stores (tests open many): a thread starts in
 * tens of milliseconds from dist/, but in over a second under the tests' TypeScript loader. Started on
 * the first open, gone when it dies (the next open starts another). It never keeps the process alive
 * by itself: each database's port does, while a call waits.
 */
let shared: Worker | undefined;

function writerThread(): Worker {
  if (shared) return shared;
  const worker = new Worker(workerFile);
  worker.unref();
  // Every open store listens for its exit.
  worker.setMaxListeners(0);
  worker.once('exit', () => {
    if (shared === worker) shared = undefined;
  });
  shared = worker;
  return worker;
}

const asError = (f: Failure): Error => Object.assign(new Error(f.message), { code: f.code });

interface Pending {
  resolve: (value: never) => void;
  reject: (err: unknown) => void;
}

/**
 * The main thread's side of one database in the SQLite writer thread: `call` sends one write and
 * resolves once it is committed (and fsynced, with synchronous=FULL). Calls are answered in the order
 * they were made. If the thread dies, every waiting call and every later one fails with a `not_ready`
 * error (a 503), and `check` throws it: nothing waits forever for a thread that is gone.
 */
export class WriterThread {
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Set once the thread stopped without being asked to: every call now fails with it. */
  private failure: HeraldError | undefined;
  private cause: unknown;
  /** Calls not sent yet: the next group, filling while the thread commits the one in flight. */
  private outbox: Call[] = [];
  /** A group is being committed: the next one waits for its answer. */
  private inFlight = false;
  /** Woken when the last pending call is answered, while a close waits for it. */
  private drained: (() => void) | undefined;
  private readonly onError = (err: unknown) => (this.cause = err);
  private readonly onExit = (code: number) => this.stopped(code);

  private constructor(
    /** The thread, shared by every store of this process; exposed so a test can stop it. */
    readonly worker: Worker,
    private readonly port: MessagePort,
  ) {
    worker.on('error', this.onError).on('exit', this.onExit);
  }

  /** Opens `file` in the writer thread; resolves once it is open with the schema applied. */
  static async open(file: string, sync: 'full' | 'normal'): Promise<WriterThread> {
    const { port1, port2 } = new MessageChannel();
    const thread = new WriterThread(writerThread(), port1);
    await new Promise<void>((resolve, reject) => {
      const exited = () => failed(thread.failure);
      const failed = (err: unknown) => {
        thread.detach();
        reject(err);
      };
      port1.once('message', (msg: FromWriter) => {
        thread.worker.off('exit', exited);
        if (msg === 'ready') resolve();
        else failed(asError((msg as { openFailed: Failure }).openFailed));
      });
      thread.worker.once('exit', exited);
      thread.worker.postMessage({ file, sync, port: port2 } satisfies Open, [port2]);
    });
    port1.on('message', (msg: FromWriter) => thread.answer(msg as Reply[]));
    port1.unref();
    return thread;
  }

  /** Runs `method` of the `SqliteWriter` in the thread; resolves with its result once committed. */
  call<M extends keyof WriterCalls>(method: M, ...args: Parameters<WriterCalls[M]>): Promise<ReturnType<WriterCalls[M]>> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('the store is closed'));
    return new Promise((resolve, reject) => {
      const id = ++this.nextId;
      // Held while a call waits, so the process lives to hear the answer.
      if (this.pending.size === 0) this.port.ref();
      this.pending.set(id, { resolve, reject });
      // Every call of this turn of the event loop joins the group, as the first one is sent at its end.
      if (this.outbox.length === 0 && !this.inFlight) setImmediate(this.send);
      this.outbox.push({ id, method, args });
    });
  }

  /**
   * Sends the next group, if any and none is in flight. One group at a time, like the group commit
   * that ran on the event loop before: everything that arrives while a group commits forms the next
   * one, so under a steady load each fsync serves all the writers waiting, not half of them.
   */
  private readonly send = () => {
    if (this.inFlight || this.outbox.length === 0 || this.failure) return;
    this.inFlight = true;
    this.port.postMessage(this.outbox.splice(0, maxGroup) satisfies ToWriter);
  };

  /** Throws why the thread is gone, if it stopped without being asked to (readiness reports it). */
  check(): void {
    if (this.failure) throw this.failure;
  }

  /** Waits for every call made so far to be answered, then closes the database in the thread. */
  close(): Promise<void> {
    this.closing ??= this.closeNow();
    return this.closing;
  }

  private async closeNow(): Promise<void> {
    while (this.pending.size > 0 && !this.failure) await new Promise<void>((resolve) => (this.drained = resolve));
    this.closed = true;
    if (this.failure) return this.detach();
    // The thread answers `close` by closing the database and its end of the port.
    const gone = new Promise((resolve) => this.port.once('close', resolve));
    // Held while it closes, or a process with nothing else to do would exit before it has.
    this.port.ref();
    this.port.postMessage('close' satisfies ToWriter);
    await gone;
    this.detach();
  }

  private detach(): void {
    this.worker.off('error', this.onError).off('exit', this.onExit);
    this.port.close();
  }

  private answer(replies: Reply[]): void {
    this.inFlight = false;
    for (const reply of replies) {
      const waiting = this.pending.get(reply.id);
      if (!waiting) continue;
      this.pending.delete(reply.id);
      if ('error' in reply) waiting.reject(asError(reply.error));
      else waiting.resolve(reply.value as never);
    }
    this.send();
    if (this.pending.size > 0) return;
    this.port.unref();
    this.drained?.();
    this.drained = undefined;
  }

  private stopped(code: number): void {
    const why = this.cause instanceof Error ? this.cause.message : `exit code ${code}`;
    this.failure = Object.assign(errors.notReady(['store'], { store: 'unreachable' }), {
      cause: new Error(`the SQLite writer thread stopped: ${why}`, { cause: this.cause }),
    });
    for (const waiting of this.pending.values()) waiting.reject(this.failure);
    this.pending.clear();
    this.outbox = [];
    this.port.unref();
    this.drained?.();
  }
}
