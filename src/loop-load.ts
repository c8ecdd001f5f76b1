import { performance } from 'node:perf_hooks';

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
