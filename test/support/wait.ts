import { performance } from 'node:perf_hooks';
import type { Test } from 'tap';
import { sleep } from '../../support/util.js';

/** Polls `pred` until it holds; rejects naming `what` after `ms`. */
export async function waitUntil(what: string, pred: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A promise and its resolve: to hold a step (a commit, a store read, a write) open while the test does more. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** For a server in this process: 35 ms of every 40 spent spinning keeps its event loop busy. Returns the stop. */
export function keepLoopBusy(t: Test): () => void {
  const spin = setInterval(() => {
    const end = performance.now() + 35;
    while (performance.now() < end);
  }, 40);
  const stop = () => clearInterval(spin);
  t.teardown(stop);
  return stop;
}
