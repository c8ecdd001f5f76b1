// Write batching shared by the SSE and WebSocket sinks.
import type { Writable } from 'node:stream';

/** Sockets corked in this tick, uncorked together once every event of the tick is written. */
const corked: Writable[] = [];

function uncorkAll(): void {
  for (const out of corked) out.uncork();
  corked.length = 0;
}

/**
 * Holds what `out` is given until the end of this tick, so the events published together (one group
 * commit, one fan-out) reach a socket in one syscall rather than one each. Corks nest: a writer that
 * corks and uncorks around its own writes (as `ws` does per frame) leaves them held here.
 */
export function corkForTick(out: Writable): void {
  if (out.writableCorked) return;
  out.cork();
  if (corked.push(out) === 1) process.nextTick(uncorkAll);
}
