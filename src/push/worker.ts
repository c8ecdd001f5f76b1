import { performance } from 'node:perf_hooks';
import type { FastifyBaseLogger } from 'fastify';
import type { Bus } from '../bus/bus.js';
import { GiveWay } from '../loop-load.js';
import type { PushConfig } from '../config.js';
import { defaultPreferences, pushDecision } from '../domain/preferences.js';
import type { VapidKeys } from '../secrets.js';
import type { PushJob, Store } from '../store/store.js';
import { publicView, type Notification, type Preferences, type StoredNotification } from '../types.js';
import type { Presence } from './presence.js';
import { PushSender } from './sender.js';

/** Jobs leased per store call, and so the most the sender's thread has queued or in flight. */
const batchSize = 50;
/** Notifications (and their recipients) whose jobs one store call writes: bounds that transaction, and the writer's wait behind it. */
const queueBatch = 1_000;
/** How long a claimed job stays this sender's: longer than a send may take (its timeout below). */
const leaseMs = 60_000;
const sendTimeoutMs = 15_000;
/**
 * A direct notification wakes the worker this long after it, with every other one in that time: a
 * burst of publishes costs one look at the queue, not one per publish. A push is not that urgent.
 */
const wakeDelayMs = 20;
/** The longest wait between two tries, whatever the backoff or Retry-After says. */
const maxRetryDelayMs = 3_600_000;
/** Push services accept about 4 KB of payload; past this the notification is sent without `data`. */
const maxPayloadBytes = 3_000;

/** What the service worker receives: the notification as subscribers see it, or a summary of several. */
function payloadOf(n: Notification): string {
  const full = JSON.stringify(n);
  return Buffer.byteLength(full) <= maxPayloadBytes ? full : JSON.stringify({ ...n, data: null, body: n.body && n.body.slice(0, 500) });
}

function summaryOf(ns: Notification[]): string {
  const latest = ns[ns.length - 1]!;
  return JSON.stringify({
    summary: true,
    count: ns.length,
    ids: ns.map((n) => n.id),
    title: `${ns.length} new notifications`,
    body: ns.slice(-3).map((n) => n.title.slice(0, 200)).join('\n'),
    // The page to open: the newest one's, when it has one (a `url` field, or `data.url`).
    url: (latest as { url?: unknown }).url ?? latest.data?.url ?? null,
  });
}

/** A Retry-After header (seconds or an HTTP date) in ms from now; 0 when absent or unreadable. */
export function retryAfterMs(value: string | undefined, now: number): number {
  if (!value) return 0;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? 0 : Math.max(0, at - now);
}

export interface PushWorkerDeps {
  store: Store;
  bus: Bus;
  presence: Presence;
  vapid: VapidKeys;
  config: PushConfig;
  log: FastifyBaseLogger;
}

/**
 * Sends Web Push off the publish path: a publish writes no job; this worker writes the jobs of what
 * was committed since the store's push cursor (`queuePushJobs`), then leases and sends them; the
 * signing, encryption and requests run in a worker thread (`sender.ts`). Every instance runs one; the
 * cursor's lock gives each notification's jobs to one writer, the lease each job to one sender at a
 * time. It wakes shortly after a direct notification on the bus (an instance's own publishes
 * included) and every `pollMs` (retries, held jobs, another instance's work and a lost bus message).
 */
export class PushWorker {
  private readonly timer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** The wake due `wakeDelayMs` after a direct notification. */
  private soon: NodeJS.Timeout | undefined;
  private readonly sender: PushSender;
  /** Each batch (queueing, claiming, sending) gives way to publishing: see `drain`. */
  private readonly giveWay = new GiveWay();

  constructor(private readonly deps: PushWorkerDeps) {
    this.sender = new PushSender(deps.vapid, deps.config.vapidSubject, 86_400, sendTimeoutMs);
    this.unsubscribe = deps.bus.subscribe((msg) => {
      if (msg.kind === 'notification' && msg.notification.users) this.soon ??= setTimeout(this.wakeSoon, wakeDelayMs);
    });
    this.timer = setInterval(() => this.wake(), deps.config.pollMs);
    this.timer.unref();
    this.wake();
  }

  private readonly wakeSoon = () => {
    this.soon = undefined;
    this.wake();
  };

  private wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .catch((err: unknown) => this.deps.log.error({ err }, 'push queue run failed; retrying at the next poll'))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  /**
   * Until the cursor has caught up and no job is due: one batch of each per turn, so new jobs never
   * wait for a whole backlog's sends. Each batch gives way to publishes and live delivery while the
   * event loop is busy (`GiveWay`). The sender thread's lower priority is not enough on its own: on two
   * cores, every publish hands work from the event loop to the SQLite writer and back, and each
   * hand-off waited behind the sender (and the garbage collector's helper threads, which run at normal
   * priority): publishes to users with push subscriptions ran at 0.6 to 0.8× the rate of those without.
   */
  private async drain(): Promise<void> {
    for (;;) {
      await this.giveWay.wait(() => this.stopped);
      if (this.stopped) return;
      const started = performance.now();
      const scanned = await this.deps.store.queuePushJobs(Date.now(), queueBatch);
      const jobs = await this.deps.store.claimPushJobs(Date.now(), batchSize, leaseMs);
      if (jobs.length === 0 && scanned === 0) return;
      if (jobs.length > 0) await this.process(jobs);
      this.giveWay.ran(started);
    }
  }

  private async process(jobs: PushJob[]): Promise<void> {
    const { store, presence } = this.deps;
    const now = Date.now();
    const prefs = new Map<string, Promise<Preferences>>();
    const online = new Map<string, Promise<boolean>>();
    const notes = new Map<number, Promise<StoredNotification | undefined>>();
    const once = <K, V>(m: Map<K, Promise<V>>, k: K, f: () => Promise<V>) => m.get(k) ?? (m.set(k, f()), m.get(k)!);
    /** Jobs done with (sent, given up, or nothing to send): one store write for the whole batch. */
    const finished: number[] = [];
    const sends: Promise<void>[] = [];
    /** Held jobs now due, per subscription: each subscription gets one summary. */
    const summaries = new Map<string, { jobs: PushJob[]; ns: Notification[] }>();
    for (const job of jobs) {
      const [p, isOnline, n] = await Promise.all([
        once(prefs, job.user, async () => (await store.preferences(job.user)) ?? defaultPreferences()),
        once(online, job.user, () => presence.isOnline(job.user)),
        once(notes, job.notificationId, async () => (await store.range(job.notificationId - 1, job.notificationId))[0]),
      ]);
      // Retention deleted it (its jobs go with it, unless this read raced the delete).
      if (!n) {
        finished.push(job.id);
        continue;
      }
      const decision = pushDecision(p, n, isOnline, now);
      if ('holdUntil' in decision) sends.push(store.deferPushJob(job.id, decision.holdUntil, 'hold'));
      else if (!decision.send) finished.push(job.id);
      else if (job.held) {
        const s = summaries.get(job.subscription.endpoint) ?? { jobs: [], ns: [] };
        s.jobs.push(job);
        s.ns.push(publicView(n));
        summaries.set(job.subscription.endpoint, s);
      } else sends.push(this.send([job], payloadOf(publicView(n)), n.critical, finished));
    }
    for (const s of summaries.values()) {
      sends.push(this.send(s.jobs, s.jobs.length === 1 ? payloadOf(s.ns[0]!) : summaryOf(s.ns), false, finished));
    }
    await Promise.all(sends);
    if (finished.length > 0) await store.finishPushJobs(finished);
  }

  /**
   * Sends one payload for `jobs` (one, or a summary of several to the same subscription); adds their
   * ids to `finished` when they are done with, or defers them for a retry.
   */
  private async send(jobs: PushJob[], payload: string, urgent: boolean, finished: number[]): Promise<void> {
    const { store, config, log } = this.deps;
    const { endpoint, p256dh, auth } = jobs[0]!.subscription;
    const ids = jobs.map((j) => j.id);
    const origin = new URL(endpoint).origin;
    const result = await this.sender.send({ endpoint, p256dh, auth, payload, urgency: urgent ? 'high' : 'normal' });
    const status = 'status' in result ? result.status : undefined;
    if ('error' in result) log.warn({ origin, err: result.error }, 'push send failed; will retry');
    if (status !== undefined && status >= 200 && status < 300) {
      finished.push(...ids);
      return;
    }
    if (status === 404 || status === 410) {
      // The browser unsubscribed or the subscription expired: it will never take a push again.
      await store.removePushSubscription(endpoint);
      log.info({ origin, status }, 'push subscription gone; removed');
      return;
    }
    const attempts = Math.max(...jobs.map((j) => j.attempts)) + 1;
    const retryable = status === undefined || status === 429 || status >= 500;
    if (!retryable || attempts >= config.maxAttempts) {
      finished.push(...ids);
      log.warn({ origin, status, attempts }, 'push not delivered; given up');
      return;
    }
    const now = Date.now();
    const retryAfter = 'retryAfter' in result ? (result.retryAfter ?? undefined) : undefined;
    const delay = Math.min(maxRetryDelayMs, Math.max(retryAfterMs(retryAfter, now), config.retryBaseMs * 2 ** (attempts - 1)));
    await Promise.all(ids.map((id) => store.deferPushJob(id, now + delay, 'retry')));
  }

  /** Stops taking jobs and waits for the sends in flight (their jobs are finished or deferred, or their lease runs out). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.soon);
    this.unsubscribe();
    await this.running;
    await this.sender.close();
  }
}
