import { performance } from 'node:perf_hooks';
import type { WebhooksConfig } from '../config.js';
import { GiveWay } from '../loop-load.js';
import type { Metrics } from '../metrics.js';
import type { OutboxEntry, Store } from '../store/store.js';
import { signature } from './sign.js';

/** Jobs one claim takes, and so attempts in flight at once per instance. */
const claimBatch = 16;
/** The longest wait between two attempts of one job, however many attempts it has had. */
const maxBackoffMs = 3_600_000;

export interface DispatcherLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Exponential backoff with equal jitter: half the doubled delay, plus a random part of the other half. */
export function backoffMs(baseMs: number, attempts: number): number {
  const delay = Math.min(maxBackoffMs, baseMs * 2 ** Math.max(0, attempts - 1));
  return delay / 2 + Math.random() * (delay / 2);
}

/**
 * Sends the outbox's due webhooks, signed, and records each outcome: delivered (the job goes), failed
 * (due again after a backoff) or dead (out of attempts). A claim leases its jobs for longer than an
 * attempt can take, so a job whose instance died mid-attempt is claimed again once the lease is over:
 * at least once, with the same webhook-id.
 */
export class Dispatcher {
  private running: Promise<void> | undefined;
  private readonly stopping = new AbortController();
  private wakeUp: (() => void) | undefined;
  /** Each claim and its attempts give way to publishing: see `run`. */
  private readonly giveWay = new GiveWay();

  constructor(
    private readonly store: Store,
    private readonly secret: string,
    private readonly config: WebhooksConfig,
    private readonly metrics: Metrics,
    private readonly log: DispatcherLog,
  ) {}

  start(): void {
    this.running ??= this.run();
  }

  /** Something was written to the outbox: look now rather than at the next poll. */
  wake(): void {
    this.wakeUp?.();
  }

  /** Stops claiming and cuts the attempts in flight: their jobs are retried when their lease ends. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wake();
    await this.running;
  }

  /**
   * Claims and sends until stopped. Like pushes, webhooks give way to publishes and live delivery:
   * while the event loop is busy, the next claim waits (`GiveWay`), as a receipt per delivered
   * notification can mean an attempt per delivery, each a request and a signature on this loop.
   */
  private async run(): Promise<void> {
    // An attempt may take the whole timeout: the lease outlasts it, so no job is claimed twice at once.
    const leaseMs = this.config.timeoutMs * 2 + 1_000;
    const stopped = () => this.stopping.signal.aborted;
    while (!stopped()) {
      await this.giveWay.wait(stopped);
      if (stopped()) return;
      const started = performance.now();
      let jobs: OutboxEntry[] = [];
      try {
        jobs = await this.store.claimWebhooks(claimBatch, leaseMs);
      } catch (err) {
        this.log.error({ err }, 'claiming webhooks failed; trying again at the next poll');
      }
      if (jobs.length > 0) {
        await Promise.all(jobs.map((job) => this.attempt(job)));
        this.giveWay.ran(started);
      } else await this.idle();
    }
  }

  private idle(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, this.config.pollMs);
      this.wakeUp = done;
      if (this.stopping.signal.aborted) done();
    });
  }

  private async attempt(job: OutboxEntry): Promise<void> {
    let failure: string;
    try {
      const timestamp = Math.floor(Date.now() / 1000);
      const res = await fetch(job.endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Herald-Webhooks',
          'webhook-id': job.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signature(this.secret, job.id, timestamp, job.payload),
        },
        body: job.payload,
        // A redirect is a failure: following it would send the payload somewhere not configured.
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(this.config.timeoutMs), this.stopping.signal]),
      });
      await res.body?.cancel();
      if (res.status >= 200 && res.status < 300) {
        await this.store.webhookDelivered(job.id);
        this.metrics.webhookAttempt('delivered');
        return;
      }
      failure = `HTTP ${res.status}`;
    } catch (err) {
      // Stopping: the attempt is not counted as failed; the lease brings the job back.
      if (this.stopping.signal.aborted) return;
      failure = err instanceof Error ? `${err.name}: ${(err.cause as Error | undefined)?.message ?? err.message}` : String(err);
    }
    const dead = job.attempts >= this.config.maxAttempts;
    try {
      await this.store.webhookFailed(job.id, failure, dead ? null : Date.now() + backoffMs(this.config.retryBaseMs, job.attempts));
      this.metrics.webhookAttempt(dead ? 'dead' : 'failed');
      if (dead) this.log.warn({ webhookId: job.id, event: job.event, attempts: job.attempts, failure }, 'webhook dead after its last attempt');
    } catch (err) {
      this.log.error({ err, webhookId: job.id }, 'recording a failed webhook attempt failed; the job is retried when its lease ends');
    }
  }
}
