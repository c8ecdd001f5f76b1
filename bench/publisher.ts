// A load process that POSTs notifications, each stamped with `data.t` = the send time on the shared
// monotonic clock, either at a fixed rate (fan-out and latency) or as fast as `connections` allow
// (the crash check). Driven over IPC by load.ts.
import http from 'node:http';
import { sleep } from '../support/util.js';
import { Histogram, nowMs, serve, type Msg } from './lib.js';

interface PublishRun {
  port: number;
  key: string;
  /** Notifications per second; 0 = closed loop, `connections` requests always in flight. */
  rate: number;
  durationMs: number;
  connections: number;
  /** Broadcast, or each to one random user `${prefix}${0..users-1}`. */
  target: 'broadcast' | 'users';
  /** Instead of a broadcast, to this topic (a Pusher channel's: every Pusher stream holds it). */
  topic?: string;
  prefix: string;
  users: number;
  /** Keep the id of every 201 (to check them against the database afterwards). */
  keepIds: boolean;
  /** Closed loop only: stop after this many requests. */
  total?: number;
  /** The notifications' `type`, if any. */
  type?: string;
}

async function run(o: PublishRun): Promise<Msg> {
  // Fresh connections each run: one kept idle across runs may be closed by the server's keep-alive
  // timeout just as a request goes out on it (ECONNRESET).
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.connections });
  let sent = 0;
  let ok = 0;
  let failed = 0;
  let inFlight = 0;
  let firstError = '';
  const ids: number[] = [];
  const rtt = new Histogram();
  const post = () =>
    new Promise<void>((resolve) => {
      sent++;
      inFlight++;
      const target =
        o.topic !== undefined
          ? `"topic":"${o.topic}"`
          : o.target === 'broadcast'
            ? '"broadcast":true'
            : `"user":"${o.prefix}${Math.floor(Math.random() * o.users)}"`;
      const t = nowMs();
      const type = o.type ? `,"type":${JSON.stringify(o.type)}` : '';
      const body = `{${target}${type},"title":"bench","body":"benchmark notification","data":{"t":${t}}}`;
      const req = http.request(
        {
          agent,
          host: '127.0.0.1',
          port: o.port,
          method: 'POST',
          path: '/notifications',
          headers: { authorization: `Bearer ${o.key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => {
            rtt.record(nowMs() - t);
            if (res.statusCode === 201) {
              ok++;
              if (o.keepIds) ids.push((JSON.parse(text) as { id: number }).id);
            } else {
              failed++;
              firstError ||= `${res.statusCode} ${text}`;
            }
            inFlight--;
            resolve();
          });
        },
      );
      req.on('error', (err) => {
        failed++;
        firstError ||= String(err);
        inFlight--;
        resolve();
      });
      req.end(body);
    });

  const t0 = nowMs();
  const end = t0 + o.durationMs;
  if (o.rate === 0) {
    // Closed loop stops at the first failure: in the crash check that is the server going away.
    const loop = async () => {
      while (nowMs() < end && failed === 0 && sent < (o.total ?? Infinity)) await post();
    };
    await Promise.all(Array.from({ length: o.connections }, loop));
  } else {
    const total = Math.round((o.rate * o.durationMs) / 1000);
    // Each tick sends what the schedule says is due; a server that falls behind shows as latency,
    // and past 10,000 requests in flight the publisher stops adding more rather than its own memory.
    while (sent < total && nowMs() < end + 1_000) {
      const due = Math.min(total, Math.floor(((nowMs() - t0) * o.rate) / 1000));
      while (sent < due && inFlight < 10_000) void post();
      await sleep(1);
    }
    const drainBy = nowMs() + 30_000;
    while (inFlight > 0 && nowMs() < drainBy) await sleep(5);
  }
  agent.destroy();
  return {
    op: 'publish',
    sent,
    ok,
    failed,
    unanswered: inFlight,
    firstError,
    ms: nowMs() - t0,
    ids,
    rttP50: rtt.percentile(50),
    rttP99: rtt.percentile(99),
  };
}

serve((msg) => {
  if (msg.op !== 'publish') throw new Error(`unknown op ${msg.op}`);
  return run(msg as unknown as PublishRun & Msg);
});
