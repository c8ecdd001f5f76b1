// Ingest with Web Push (`--only ingest-push`): durable publishes to users with nothing set, against
// publishes to users with preferences and two push subscriptions each, on one Herald, in alternating
// rounds; the pushes really go out, to a loopback push service (push-service.ts) that counts them.
import { createECDH, randomBytes } from 'node:crypto';
import os from 'node:os';
import { sleep } from '../../support/util.js';
import { benchScript, spawnNode, Worker, type Msg } from '../lib.js';
import { withPublisher, type PublishResult } from '../load.js';
import type { Options } from '../options.js';
import { fmt, log, type Row, type Section } from '../report.js';
import { startHerald, userToken, withServer, type Server } from '../servers.js';

/** Each (b) user's document: some types muted, a topic's push off, and every other publish pushed. */
const preferences = {
  push: 'always',
  types: { chat: { inapp: false }, billing: { inapp: false, push: false } },
  topics: { deploys: { push: false } },
};
const devicesPerUser = 2;
/** The type every publish carries, (a) and (b) alike: neither muted nor switched off. */
const publishedType = 'export';
/** How long the last round's pushes may take to all arrive before the bench stops waiting. */
const drainLimitMs = 120_000;

/** The push service (push-service.ts) in its own process at nice 19: see there why. */
async function startPushService(): Promise<{ url: string; received: () => Promise<number>; close: () => Promise<void> }> {
  const w = new Worker(spawnNode(benchScript('push-service'), [], { ipc: true }));
  try {
    os.setPriority(w.proc.pid!, 19);
    const { url } = await w.call<Msg & { url: string }>({ op: 'start' });
    return { url, received: async () => (await w.call<Msg & { received: number }>({ op: 'count' })).received, close: () => w.stop() };
  } catch (err) {
    await w.stop();
    throw err;
  }
}

/** A browser's PushSubscription: a real P-256 key and auth secret, so Herald can encrypt to it. */
function subscription(endpoint: string) {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return { endpoint, expirationTime: null, keys: { p256dh: ecdh.getPublicKey('base64url'), auth: randomBytes(16).toString('base64url') } };
}

async function call(s: Server, method: string, path: string, user: string, body: unknown): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${s.port}${path}`, {
    method,
    headers: { authorization: `Bearer ${userToken({ sub: user })}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path} for ${user}: ${res.status} ${await res.text()}`);
}

/** Gives every (b) user their preferences and subscriptions, a few users at a time. */
async function setUpUsers(s: Server, pushUrl: string, users: number): Promise<void> {
  const setUp = async (u: number) => {
    const user = `pushed${u}`;
    await call(s, 'PUT', '/preferences', user, preferences);
    for (let d = 0; d < devicesPerUser; d++) await call(s, 'POST', '/push/subscriptions', user, subscription(`${pushUrl}/push/${user}-${d}`));
  };
  for (let u = 0; u < users; u += 10) await Promise.all(Array.from({ length: Math.min(10, users - u) }, (_, i) => setUp(u + i)));
}

const perSec = (runs: PublishResult[]) => runs.reduce((a, r) => a + r.ok, 0) / (runs.reduce((a, r) => a + r.ms, 0) / 1000);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/**
 * Rounds of (a) and (b), the same closed-loop publisher and duration each, after one unmeasured run
 * of (a) (the publish path's first seconds run before V8 has optimised it). The order alternates, (a)
 * then (b), then (b) then (a), so neither side always has the first or the second slot: with (b)
 * swapped for more users with nothing set (an A/A run), the second slot of a pair went 8 to 28 %
 * faster than the first. After each (b) it waits until every push queued so far has arrived, so
 * the sender's backlog does not slow the (a) after it: what (b) pays is the sender's work that runs
 * during its own window.
 */
export async function ingestPush(o: Options): Promise<Section> {
  const users = o.ingestPushUsers;
  const push = await startPushService();
  try {
    const env = { HERALD_PUSH_ALLOW_LOOPBACK_HTTP: 'true' };
    const measured = await withServer(
      () => startHerald(o, env),
      async (s) => {
        await setUpUsers(s, push.url, users);
        return withPublisher(s, async (publish) => {
          const run = (prefix: string) =>
            publish({ rate: 0, durationMs: o.ingestPushSeconds * 1000, connections: o.ingestConnections, target: 'users', prefix, users, type: publishedType });
          const a: PublishResult[] = [];
          const b: PublishResult[] = [];
          const drainMs: number[] = [];
          const runA = async () => void a.push(await run('plain'));
          const runB = async () => {
            const before = await push.received();
            b.push(await run('pushed'));
            const expected = b.reduce((x, r) => x + r.ok, 0) * devicesPerUser;
            const during = (await push.received()) - before;
            const t0 = Date.now();
            while ((await push.received()) < expected && Date.now() - t0 < drainLimitMs) await sleep(20);
            drainMs.push(Date.now() - t0);
            return during;
          };
          await run('warm');
          for (let round = 0; round < o.ingestPushRounds; round++) {
            let during: number;
            if (round % 2 === 0) {
              await runA();
              during = await runB();
            } else {
              during = await runB();
              await runA();
            }
            log(`ingest-push round ${round + 1} (${round % 2 === 0 ? 'a, b' : 'b, a'}): (a) ${a.at(-1)!.ok} in ${a.at(-1)!.ms.toFixed(0)} ms, (b) ${b.at(-1)!.ok} in ${b.at(-1)!.ms.toFixed(0)} ms, ${during} pushes during (b), the rest in ${drainMs.at(-1)} ms after`);
          }
          return { a, b, drainMs, expected: b.reduce((x, r) => x + r.ok, 0) * devicesPerUser, delivered: await push.received() };
        });
      },
    );
    return report(o, measured);
  } finally {
    await push.close();
  }
}

function report(o: Options, m: { a: PublishResult[]; b: PublishResult[]; drainMs: number[]; expected: number; delivered: number }): Section {
  const [a, b] = [perSec(m.a), perSec(m.b)];
  const failed = [...m.a, ...m.b].reduce((x, r) => x + r.failed + r.unanswered, 0);
  const rtt = (runs: PublishResult[]) => `${fmt(median(runs.map((r) => r.rttP50)), 'ms')} / ${fmt(median(runs.map((r) => r.rttP99)), 'ms')}`;
  const raw = { ingestPush: { users: o.ingestPushUsers, rounds: o.ingestPushRounds, seconds: o.ingestPushSeconds, a: m.a, b: m.b, aPerSec: a, bPerSec: b, ratio: b / a, failed, pushesExpected: m.expected, pushesDelivered: m.delivered, drainMs: m.drainMs } };
  const rows: Row[] = [
    {
      scenario: `Ingest with Web Push: ${o.ingestPushRounds} rounds × 2 × ${o.ingestPushSeconds} s, -c ${o.ingestConnections}, ${o.ingestPushUsers} users each side`,
      metric: 'durable notifications/s, (a) users with nothing set',
      herald: a,
      peer: null,
      unit: '/s',
    },
    { scenario: '', metric: `durable notifications/s, (b) users with preferences + ${devicesPerUser} push subscriptions, push always`, herald: b, peer: null, unit: '/s' },
    { scenario: '', metric: '(b) / (a)', herald: null, peer: null, unit: '', text: [`${(b / a).toFixed(2)}×`, '–'], target: '≥ 0.90×', met: b / a >= 0.9 && failed === 0 },
    { scenario: '', metric: 'POST p50 / p99 (median of rounds), (a); (b)', herald: null, peer: null, unit: '', text: [`${rtt(m.a)}; ${rtt(m.b)}`, '–'] },
    {
      scenario: '',
      metric: 'pushes delivered / queued by (b)',
      herald: null,
      peer: null,
      unit: '',
      text: [`${m.delivered.toLocaleString('en-US')} / ${m.expected.toLocaleString('en-US')}`, '–'],
      target: 'all',
      met: m.delivered >= m.expected && m.expected > 0,
    },
    { scenario: '', metric: 'after each (b) round, until its last push arrived', herald: null, peer: null, unit: '', text: [m.drainMs.map((x) => fmt(x, 'ms')).join(', '), '–'] },
  ];
  log(`ingest-push: (a) ${fmt(a, '/s')}, (b) ${fmt(b, '/s')}, ratio ${(b / a).toFixed(3)}, pushes ${m.delivered}/${m.expected}, ${failed} failed`);
  return { rows, raw };
}
