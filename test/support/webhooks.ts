// What the webhook suites share: quick settings, a receiver and a server per test, and the checks
// that must hold on SQLite and on PostgreSQL alike.
import type { Test } from 'tap';
import type { Json } from './http.js';
import { startServer, type Server } from './server.js';
import { sleep } from '../../support/util.js';
import { connect } from './sse.js';
import { waitUntil } from './wait.js';
import { publisherKey } from './tokens.js';
import { startReceiver, webhookSecret, type Receiver } from './webhook-receiver.js';

/** Quick polls and retries, so a test sees several attempts in well under a second. */
export const quick = {
  HERALD_WEBHOOK_SECRET: webhookSecret,
  HERALD_WEBHOOK_ALLOW_HTTP: 'true',
  HERALD_WEBHOOK_POLL_MS: '50',
  HERALD_WEBHOOK_RETRY_BASE_MS: '50',
  HERALD_WEBHOOK_TIMEOUT_MS: '1000',
  HERALD_RECEIPT_FLUSH_MS: '20',
};

export async function receiverFor(t: Test): Promise<Receiver> {
  const r = await startReceiver();
  t.teardown(() => r.close());
  return r;
}

export async function serverFor(t: Test, receiver: Receiver, env: Record<string, string> = {}): Promise<Server> {
  const s = await startServer({ env: { ...quick, HERALD_WEBHOOKS: receiver.url, ...env } });
  t.teardown(() => s.close());
  return s;
}

export const publisher = { authorization: `Bearer ${publisherKey}` };
export const adminGet = async (s: Server, path: string): Promise<{ status: number; body: Json }> => {
  const res = await fetch(s.url + path, { headers: publisher });
  return { status: res.status, body: await res.json() };
};

/** The user actions and delivery of one notification, reported and recorded: the same on either store. */
export async function receiptsAndEvents(t: Test, store: Record<string, string>): Promise<void> {
  const receiver = await receiverFor(t);
  const s = await serverFor(t, receiver, store);
  const stream = await connect(s, 'alice');
  t.teardown(() => stream.close());

  const direct = (await s.publish({ user: 'alice', title: 'direct' })).body.id as number;
  const other = (await s.publish({ users: ['alice', 'bob'], title: 'to two' })).body.id as number;
  const broadcast = (await s.publish({ broadcast: true, title: 'everyone' })).body.id as number;
  await stream.waitFor((evs) => evs.filter((e) => e.type === 'notification').length === 3);
  await receiver.waitFor(() => receiver.of('notification.delivered').length === 2);
  const delivered = receiver.of('notification.delivered').map((r) => r.payload.data);
  t.same(
    delivered.map((d: Json) => d.notificationId).sort(),
    [direct, other].sort(),
    'a delivered webhook for each direct notification a stream of alice got; none for bob (no stream) nor the broadcast',
  );
  t.ok(delivered.every((d: Json) => d.user === 'alice' && typeof d.deliveredAt === 'string'));

  t.equal((await s.request('POST', `/notifications/${direct}/read`, 'alice')).status, 200);
  t.equal((await s.request('DELETE', `/notifications/${other}`, 'alice')).status, 204);
  const all = (await s.request('POST', '/notifications/read-all', 'alice')).body.upTo as number;
  await receiver.waitFor(() => receiver.of('notification.read').length === 2 && receiver.of('notification.deleted').length === 1);
  t.ok(receiver.requests.every((r) => r.verified), 'every request verifies with standardwebhooks');
  // Webhooks are not ordered (a batch's attempts go out together): tell the two reads apart by their data.
  const reads = receiver.of('notification.read').map((r) => r.payload.data);
  const read = reads.find((d: Json) => 'notificationId' in d);
  const readAll = reads.find((d: Json) => 'upTo' in d);
  t.match(read, { user: 'alice', notificationId: direct, readAt: String });
  t.match(readAll, { user: 'alice', upTo: all, readAt: String }, 'mark-all-read: one event with the watermark');
  t.notOk('notificationId' in readAll);
  t.match(receiver.of('notification.deleted')[0]!.payload.data, { user: 'alice', notificationId: other, deletedAt: String });

  const items = (await s.request('GET', '/notifications', 'alice')).body.items as Json[];
  const byId = new Map(items.map((i) => [i.id, i]));
  t.equal(byId.get(direct).deliveredAt, delivered.find((d: Json) => d.notificationId === direct).deliveredAt, 'deliveredAt in history');
  t.equal(byId.get(direct).readAt, read.readAt, 'readAt of a single read: its time, not the later read-all');
  t.equal(byId.get(broadcast).deliveredAt, null, 'no delivered receipt for a broadcast');
  t.equal(byId.get(broadcast).readAt, readAll.readAt, 'readAt of an item under the watermark: the time of the read-all');
  t.notOk(byId.has(other), 'deleted');

  const bob = (await s.request('GET', '/notifications', 'bob')).body.items as Json[];
  t.match(bob.find((i) => i.id === other), { deliveredAt: null, readAt: null, read: false }, "bob's receipts are his own");
}

/** Retention by age drops the read-all times it passed: they cover no notification any more. */
export async function readAllTimesPruned(t: Test, store: Record<string, string>, count: (s: Server) => Promise<number>): Promise<void> {
  const s = await startServer({ env: store });
  t.teardown(() => s.close());
  await s.publish({ user: 'hana', title: 'old' });
  await s.request('POST', '/notifications/read-all', 'hana');
  await s.request('POST', '/notifications/read-all', 'ivan');
  t.equal(await count(s), 2, 'one row per read-all');
  await s.store.prune({ olderThan: new Date(Date.now() + 60_000) });
  t.equal(await count(s), 0, 'gone with the notifications they covered');
  const kept = (await s.publish({ user: 'hana', title: 'new' })).body.id as number;
  await s.request('POST', '/notifications/read-all', 'hana');
  t.equal(await count(s), 1);
  t.match((await s.request('GET', '/notifications', 'hana')).body.items, [{ id: kept, read: true, readAt: String }]);
}


/**
 * Retention by age drops dead webhooks older than its cutoff (they would stay for ever otherwise),
 * and nothing else of the outbox: a newer dead one, and a pending one, stay.
 */
export async function deadWebhooksPruned(t: Test, store: Record<string, string>): Promise<void> {
  const receiver = await receiverFor(t);
  receiver.answer = () => 503;
  const s = await serverFor(t, receiver, { ...store, HERALD_WEBHOOK_MAX_ATTEMPTS: '1', HERALD_WEBHOOK_TIMEOUT_MS: '30000' });
  const ids = async (status: string) =>
    ((await adminGet(s, `/webhooks/deliveries?status=${status}`)).body.items as Json[]).map((w) => w.payload.data.notificationId as number);
  const readAndWait = async (title: string, until: (id: number) => Promise<boolean>) => {
    const id = (await s.publish({ user: 'jo', title })).body.id as number;
    await s.request('POST', `/notifications/${id}/read`, 'jo');
    await waitUntil(`the webhook of ${title} where expected`, () => until(id));
    return id;
  };
  const isDead = async (id: number) => (await ids('dead')).includes(id);

  await readAndWait('old', isDead);
  await sleep(20);
  const cutoff = new Date();
  await sleep(20);
  const newer = await readAndWait('newer', isDead);
  await s.store.prune({ olderThan: cutoff });
  t.same(await ids('dead'), [newer], 'the dead webhook from before the cutoff went; the newer one stayed');

  // One in flight (its endpoint never answers): pending, however old.
  receiver.answer = () => 'hang';
  const pending = await readAndWait('pending', async (id) => receiver.requests.some((r) => r.payload.data.notificationId === id));
  await s.store.prune({ olderThan: new Date(Date.now() + 60_000) });
  t.same(await ids('dead'), [], 'every dead one before a cutoff in the future');
  t.same(await ids('pending'), [pending], 'the pending one stayed');
}
