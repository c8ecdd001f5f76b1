// Write batching shared by the SSE and WebSocket sinks: when a stream's socket gets its bytes.
import { performance } from 'node:perf_hooks';
import type { Writable } from 'node:stream';
import { LoopLoad } from '../loop-load.js';

/** One stream's socket as the flusher sees it; the sink keeps it for the stream's life. */
export class HeldSocket {
  /** When this socket's held writes last went out (performance.now()). */
  lastFlush = -Infinity;
  constructor(readonly out: Writable) {}
}

/**
 * Sockets uncorked per turn of the event loop; the rest go out in the following turns. Node's libuv
 * (1.45 on, libuv#3696) accepts one connection per turn, so while live traffic keeps the loop busy
 * the accept rate is the turn rate: a turn that writes to 15,000 sockets (~100 ms) starved the accept
 * queue during a reconnect storm, and slices of 1,024 still left it at about 100 accepts a second.
 * Slices of 32 made it 400 to 700 a second in a storm carrying 11 broadcasts a second (a socket write
 * there cost about 30 µs); slices of 8 make it 800 to 1,400, and the writes they defer join the
 * socket's next ones. Fan-out is unchanged: a turn costs a few microseconds beside 8 socket writes.
 */
const defaultSlice = 8;

/** How often the loop's utilisation is read to decide whether it is busy, ms. */
const loadSampleMs = 20;

/**
 * Decides when held writes reach the sockets, for one app. Every write corks its socket; by default
 * the socket is uncorked at the end of the tick, so the events of one group commit leave in one
 * syscall. Under load it waits longer: when the event loop is busy and the socket already had a
 * flush less than `windowMs` ago, its writes are held until that window has passed, so the events of
 * several commits in a row leave together and syscalls grow with streams × flushes rather than
 * streams × events. An isolated event (a socket that had nothing in the last window, or an idle
 * loop) is never held past its tick. Corks nest: a writer that corks and uncorks around its own
 * writes (as `ws` does per frame) leaves them held here.
 */
export class Flusher {
  /** Uncorked at the end of this tick. */
  private readonly soon: HeldSocket[] = [];
  /** Uncorked when the window closes. */
  private readonly later: HeldSocket[] = [];
  private laterTimer: NodeJS.Timeout | undefined;
  /** performance.now() of this tick's first write, shared by every socket written in the tick. */
  private tickNow: number | undefined;
  private readonly load = new LoopLoad(loadSampleMs);

  /** Due sockets not yet uncorked, from `next` on: a slice per turn of the event loop. */
  private due: HeldSocket[] = [];
  private next = 0;
  private sliceScheduled = false;

  /**
   * `windowMs`: the longest a write may be held under load; 0 holds nothing past its tick.
   * `slice`: the most sockets uncorked in one turn of the event loop.
   */
  constructor(
    private readonly windowMs: number,
    private readonly slice = defaultSlice,
  ) {}

  /** Call before each write to `s.out`: the write is then held until its flush. */
  hold(s: HeldSocket): void {
    const out = s.out;
    if (out.writableCorked) return;
    out.cork();
    const now = this.tickStart();
    // A socket flushed within the window is the only one that may wait, so the loop's load is read for those only.
    if (now - s.lastFlush < this.windowMs && this.load.isBusy(now)) {
      if (this.later.push(s) === 1) this.laterTimer = setTimeout(this.flushLater, this.windowMs);
    } else this.soon.push(s);
  }

  /**
   * Takes over a cork the caller already put on `s.out` (an SSE stream's head, see sse.ts): what it
   * holds leaves with this tick's writes, never later.
   */
  adopt(s: HeldSocket): void {
    this.tickStart();
    this.soon.push(s);
  }

  /** Sends what is held now (shutdown). */
  close(): void {
    clearTimeout(this.laterTimer);
    this.flushLater();
    this.uncorkSlice(Infinity);
  }

  private tickStart(): number {
    if (this.tickNow !== undefined) return this.tickNow;
    const now = (this.tickNow = performance.now());
    process.nextTick(this.flushSoon);
    return now;
  }

  private readonly flushSoon = (): void => {
    this.tickNow = undefined;
    this.flush(this.soon);
  };

  private readonly flushLater = (): void => {
    this.laterTimer = undefined;
    this.flush(this.later);
  };

  /**
   * Queues `held` to be uncorked: a slice now, unless earlier ones still wait for their turn. A
   * queued socket stays corked, so what is written to it meanwhile joins its held bytes, in order.
   */
  private flush(held: HeldSocket[]): void {
    for (const s of held) this.due.push(s);
    held.length = 0;
    if (!this.sliceScheduled) this.uncorkSlice();
  }

  /** Uncorks the next `count` due sockets; schedules the next slice if any are left. */
  private readonly uncorkSlice = (count = this.slice): void => {
    this.sliceScheduled = false;
    const now = performance.now();
    const end = Math.min(this.due.length, this.next + count);
    for (; this.next < end; this.next++) {
      const s = this.due[this.next]!;
      s.lastFlush = now;
      s.out.uncork();
    }
    if (this.next < this.due.length) {
      this.sliceScheduled = true;
      setImmediate(this.uncorkSlice);
    } else {
      this.due = [];
      this.next = 0;
    }
  };
}

/**
 * Writes one piece of a replay and resolves true once `out` has taken it (drained below its high-water
 * mark), false if the stream closed first: replays are paced by the client reading, not bounded.
 */
export async function writeAndDrain(out: Writable, chunk: Buffer | string): Promise<boolean> {
  if (out.destroyed) return false;
  if (!out.write(chunk)) {
    await new Promise<void>((resolve) => {
      const done = () => {
        out.off('drain', done);
        out.off('close', done);
        resolve();
      };
      out.on('drain', done);
      out.on('close', done);
    });
  }
  return !out.destroyed;
}
