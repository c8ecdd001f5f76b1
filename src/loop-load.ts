import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/** Above this share of time spent running rather than waiting for I/O, a loop counts as busy. */
const busyUtilization = 0.5;

/**
 * Whether this thread's event loop is busy: over half of the time since the last reading spent
 * running rather than waiting for I/O (`performance.eventLoopUtilization`). Read at most once per
 * `sampleMs`, as the reading itself costs a little and callers ask often.
 */
export class LoopLoad {
  private busy = false;
  private sampledAt = -Infinity;
  private elu = performance.eventLoopUtilization();

  constructor(private readonly sampleMs: number) {}

  /** `now`: performance.now(), when the caller has it. */
  isBusy(now = performance.now()): boolean {
    if (now - this.sampledAt >= this.sampleMs) {
      const elu = performance.eventLoopUtilization();
      this.busy = performance.eventLoopUtilization(elu, this.elu).utilization > busyUtilization;
      this.elu = elu;
      this.sampledAt = now;
    }
    return this.busy;
  }
}

/** While the event loop is busy, how often a waiting batch looks at it again, ms. */
const giveWaySampleMs = 25;
/**
 * Under a busy loop a batch waits up to this many times as long as the last one took, and at least
 * `minGiveWayMs`: the background work then gets about a tenth of the time, and still moves under a
 * load that never ends. At most `maxGiveWayMs`: a batch that took long waiting on a slow remote
 * service used no CPU meanwhile.
 */
const giveWayFactor = 9;
const minGiveWayMs = 250;
const maxGiveWayMs = 5_000;

/**
 * Background work done in batches from a durable queue (pushes, webhooks) giving way to publishes and
 * live delivery: while this thread's event loop is busy, the next batch waits, for a time bounded as
 * above; on an idle loop it starts at once. What waits is sent later, never lost.
 */
export class GiveWay {
  private readonly load = new LoopLoad(giveWaySampleMs);
  /** How long the last batch took, ms. */
  private lastRunMs = 0;

  /** Resolves when the next batch may start, or as soon as `stopped()` says so. */
  async wait(stopped: () => boolean): Promise<void> {
    const until = performance.now() + Math.min(maxGiveWayMs, Math.max(minGiveWayMs, giveWayFactor * this.lastRunMs));
    while (!stopped() && this.load.isBusy() && performance.now() < until) await sleep(giveWaySampleMs);
  }

  /** A batch that began at `started` (performance.now()) is done. */
  ran(started: number): void {
    this.lastRunMs = performance.now() - started;
  }
}
