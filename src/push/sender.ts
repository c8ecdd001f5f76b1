import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { VapidKeys } from '../secrets.js';

/** How long a VAPID JWT is valid: push services accept up to 24 h; 12 h is web-push's own default. */
const jwtSeconds = 12 * 3600;
/** A JWT is replaced this long before it expires, so none reaches a push service about to expire. */
const jwtMarginSeconds = 3600;

/**
 * The sender thread's nice value. Encrypting a push costs about a millisecond of CPU: at full ingest,
 * sending as fast as the queue fills would take the CPU publishes need (the bench's ingest-push). At
 * nice 10 the thread gets about a tenth of a busy core's time, and all of an idle one, so the durable
 * queue absorbs a burst and drains after it, and pushes keep moving under a load that never ends.
 */
export const senderNice = 10;

/**
 * The thread's code. Plain CommonJS given as a string, as in `store/checkpointer.ts`, so the same code
 * runs from `dist/` and from the TypeScript sources in the tests. Each message is encrypted at once
 * (synchronous, so one at a time) and its request then awaited alongside the others in flight.
 */
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const webpush = require(workerData.webPush);
const { subject, publicKey, privateKey, jwtSeconds, jwtMarginSeconds, ttl, timeoutMs, nice } = workerData;
// Pushes yield the CPU to publishing: Linux takes a thread id where setpriority takes a process id, so
// this raises the nice value of this thread alone. Elsewhere (no /proc/thread-self) it runs as it is.
try {
  require('node:os').setPriority(Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop()), nice);
} catch {}
const jwts = new Map();
function authorization(audience) {
  const now = Math.floor(Date.now() / 1000);
  let jwt = jwts.get(audience);
  if (!jwt || now >= jwt.renewAt) {
    const exp = now + jwtSeconds;
    const header = webpush.getVapidHeaders(audience, subject, publicKey, privateKey, 'aes128gcm', exp).Authorization;
    jwt = { header, renewAt: exp - jwtMarginSeconds };
    jwts.set(audience, jwt);
  }
  return jwt.header;
}
async function send(m) {
  const req = webpush.generateRequestDetails({ endpoint: m.endpoint, keys: { p256dh: m.p256dh, auth: m.auth } }, m.payload, {
    vapidDetails: null,
    headers: { Authorization: authorization(new URL(m.endpoint).origin) },
    TTL: ttl,
    urgency: m.urgency,
  });
  const res = await fetch(req.endpoint, {
    method: req.method,
    headers: req.headers,
    body: req.body && new Uint8Array(req.body),
    redirect: 'error',
    signal: AbortSignal.timeout(timeoutMs),
  });
  await res.body?.cancel();
  return { status: res.status, retryAfter: res.headers.get('retry-after') };
}
parentPort.on('message', (m) => {
  send(m).then(
    (r) => parentPort.postMessage({ id: m.id, ...r }),
    (err) => parentPort.postMessage({ id: m.id, error: String((err && err.cause && err.cause.message) || (err && err.message) || err) }),
  );
});
`;

export interface PushRequest {
  endpoint: string;
  p256dh: string;
  auth: string;
  payload: string;
  urgency: 'high' | 'normal';
}

/** A push service's answer, or why there was none (network, timeout, a subscription web-push rejects). */
export type PushResult = { status: number; retryAfter: string | null } | { error: string };

type Reply = { id: number } & ({ status: number; retryAfter: string | null } | { error: string });

/**
 * Signs, encrypts and sends pushes in a worker thread. On the event loop, web-push's ES256 signature
 * and its ECDH + HKDF + AES-GCM encryption took 2 to 3 ms of CPU per push under load: with two
 * devices per user, publishes ran at a fiftieth of their rate without push. The thread also keeps
 * one VAPID JWT per push service origin for 11 of its 12 hours instead of signing one per push.
 * The caller bounds the thread's queue: it sends one claimed batch at a time.
 */
export class PushSender {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, (r: PushResult) => void>();
  private nextId = 0;

  constructor(
    private readonly vapid: VapidKeys,
    private readonly subject: string,
    private readonly ttlSeconds: number,
    private readonly timeoutMs: number,
  ) {}

  send(req: PushRequest): Promise<PushResult> {
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      worker.ref();
      worker.postMessage({ id, ...req });
    });
  }

  private start(): Worker {
    const webPush = createRequire(import.meta.url).resolve('web-push');
    const { publicKey, privateKey } = this.vapid;
    const workerData = { webPush, subject: this.subject, publicKey, privateKey, jwtSeconds, jwtMarginSeconds, ttl: this.ttlSeconds, timeoutMs: this.timeoutMs, nice: senderNice };
    const worker = new Worker(workerSource, { eval: true, workerData });
    worker.on('message', (r: Reply) => {
      const resolve = this.pending.get(r.id);
      this.pending.delete(r.id);
      // Idle, it must not keep the process alive: a server nobody closed must not hang an exit.
      if (this.pending.size === 0) worker.unref();
      resolve?.('error' in r ? { error: r.error } : { status: r.status, retryAfter: r.retryAfter });
    });
    // A thread that died fails what it had (retried like a network error); the next send starts another.
    const fail = (why: string) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const resolve of this.pending.values()) resolve({ error: why });
      this.pending.clear();
    };
    worker.on('error', (err) => fail(`push thread failed: ${err.message}`));
    worker.on('exit', (code) => fail(`push thread exited (${code})`));
    worker.unref();
    this.worker = worker;
    return worker;
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }
}
