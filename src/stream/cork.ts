// Write batching shared by the SSE and WebSocket sinks: when a stream's socket gets its bytes.
import { performance } from 'node:perf_hooks';
import type { Writable } from 'node:stream';

/** One stream's socket as the flusher sees it; the sink keeps it for the stream's life. */
export class HeldSocket {
  /** When this socket's held writes last went out (performance.now()). */
  lastFlush = -Infinity;
  constructor(readonly out: Writable) {}
}

/** How often the loop's utilisation is read to decide whether it is busy, ms. */
const loadSampleMs = 20;
/** Above this share of time spent running rather than waiting for I/O, the loop counts as busy. */
const busyUtilization = 0.5;

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
  private busy = false;
  private sampledAt = -Infinity;
  private elu = performance.eventLoopUtilization();

  /** `windowMs`: the longest a write may be held under load; 0 holds nothing past its tick. */
  constructor(private readonly windowMs: number) {}

  /** Call before each write to `s.out`: the write is then held until its flush. */
  hold(s: HeldSocket): void {
    const out = s.out;
    if (out.writableCorked) return;
    out.cork();
    const now = this.tickStart();
    if (this.busy && now - s.lastFlush < this.windowMs) {
      if (this.later.push(s) === 1) this.laterTimer = setTimeout(this.flushLater, this.windowMs);
    } else this.soon.push(s);
  }

  /** Sends what is held now (shutdown). */
  close(): void {
    clearTimeout(this.laterTimer);
    this.flushLater();
  }

  private tickStart(): number {
    if (this.tickNow !== undefined) return this.tickNow;
    const now = (this.tickNow = performance.now());
    process.nextTick(this.flushSoon);
    if (this.windowMs > 0 && now - this.sampledAt >= loadSampleMs) {
      const elu = performance.eventLoopUtilization();
      this.busy = performance.eventLoopUtilization(elu, this.elu).utilization > busyUtilization;
      this.elu = elu;
      this.sampledAt = now;
    }
    return now;
  }

  private readonly flushSoon = (): void => {
    uncorkAll(this.soon, this.tickNow!);
    this.tickNow = undefined;
  };

  private readonly flushLater = (): void => {
    this.laterTimer = undefined;
    uncorkAll(this.later, performance.now());
  };
}

function uncorkAll(held: HeldSocket[], now: number): void {
  for (const s of held) {
    s.lastFlush = now;
    s.out.uncork();
  }
  held.length = 0;
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
