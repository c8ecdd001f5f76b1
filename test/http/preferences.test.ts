// Preferences (GET/PUT /preferences) and what they mute in-app: live (SSE and WebSocket), catch-up,
// history and the unread count, with critical notifications going through. Also run on PostgreSQL
// (test/store/postgres-core.test.ts).
import t from 'tap';
import { sleep } from '../../support/util.js';
import { startServer, type Server } from '../support/server.js';
import { connect } from '../support/sse.js';
import { wsConnect } from '../support/ws.js';

const topics = { topics: ['deploys', 'news'] };
const streamQuery = '?topic=deploys&topic=news';

const prefs = {
  push: 'always',
  quietHours: { start: '22:00', end: '07:00', timeZone: 'Europe/Paris' },
  types: { comment: { inapp: false }, billing: { push: false } },
  topics: { deploys: { inapp: false }, news: { inapp: true, push: false } },
};

async function putPrefs(s: Server, user: string, doc: unknown = prefs): Promise<void> {
  const r = await s.request('PUT', '/preferences', user, doc);
  if (r.status !== 200) throw new Error(`PUT /preferences answered ${r.status}: ${JSON.stringify(r.body)}`);
}

/**
 * Publishes one of each case for alice; resolves with the ids she should see (`shown`) and those her
 * preferences mute (`muted`), both in id order. The last one is always shown: a marker that the rest arrived.
 */
async function publishCases(s: Server): Promise<{ shown: number[]; muted: number[] }> {
  const cases: [Record<string, unknown>, boolean][] = [
    [{ user: 'alice', type: 'comment' }, false],
    [{ user: 'alice', type: 'billing' }, true], // push off only: in-app stays on
    [{ user: 'alice', type: 'comment', critical: true }, true],
    [{ topic: 'deploys' }, false],
    [{ topic: 'deploys', critical: true }, true],
    [{ topic: 'news', type: 'comment' }, false],
    [{ broadcast: true, type: 'comment' }, false],
    [{ users: ['alice', 'bob'], type: 'other' }, true],
  ];
  const out = { shown: [] as number[], muted: [] as number[] };
  for (const [i, [target, shown]] of cases.entries()) {
    const r = await s.publish({ ...target, title: `case ${i}` });
    if (r.status !== 201) throw new Error(`publish answered ${r.status}: ${JSON.stringify(r.body)}`);
    (shown ? out.shown : out.muted).push(r.body.id);
  }
  return out;
}

t.test('GET answers the defaults, PUT replaces the whole document and GET returns it', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  t.same((await s.request('GET', '/preferences', 'alice')).body, { push: 'offline', quietHours: null, types: {}, topics: {} });
  const put = await s.request('PUT', '/preferences', 'alice', prefs);
  t.equal(put.status, 200);
  t.same(put.body, prefs);
  t.same((await s.request('GET', '/preferences', 'alice')).body, prefs);
  t.same((await s.request('GET', '/preferences', 'bob')).body.types, {}, 'per user');
  // Replaced, not merged: what is left out takes its default.
  t.same((await s.request('PUT', '/preferences', 'alice', { types: { x: { push: false } } })).body, {
    push: 'offline',
    quietHours: null,
    types: { x: { push: false } },
    topics: {},
  });
  t.equal((await s.request('GET', '/preferences', null)).status, 401);
});

t.test('PUT refuses what is not a valid document with 400 validation_failed', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const many = Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`t${i}`, { inapp: false }]));
  const bad: [string, unknown][] = [
    ['unknown time zone', { quietHours: { start: '22:00', end: '07:00', timeZone: 'Mars/Olympus' } }],
    ['hour 24', { quietHours: { start: '24:00', end: '07:00', timeZone: 'UTC' } }],
    ['time without minutes', { quietHours: { start: '7', end: '08:00', timeZone: 'UTC' } }],
    ['quiet hours without a zone', { quietHours: { start: '22:00', end: '07:00' } }],
    ['push mode', { push: 'sometimes' }],
    ['switch not boolean', { types: { a: { inapp: 'no' } } }],
    ['unknown channel', { types: { a: { sms: false } } }],
    ['unknown field', { colour: 'blue' }],
    ['too many types', { types: many }],
    ['type key too long', { types: { ['k'.repeat(65)]: { inapp: false } } }],
    ['topic key not a topic', { topics: { 'a b': { inapp: false } } }],
  ];
  for (const [what, body] of bad) {
    const r = await s.request('PUT', '/preferences', 'alice', body);
    t.equal(r.status, 400, what);
    t.equal(r.body.code, 'validation_failed', what);
  }
  t.same((await s.request('GET', '/preferences', 'alice')).body.types, {}, 'nothing was stored');
});

t.test('muted notifications are not delivered live (SSE and WebSocket); critical ones are', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  await putPrefs(s, 'alice');
  const sse = await connect(s, 'alice', streamQuery, {}, topics);
  const ws = await wsConnect(s, 'alice', streamQuery, topics);
  t.teardown(() => (sse.close(), ws.close()));
  await ws.command('resume');
  const { shown } = await publishCases(s);
  await sse.waitFor(() => sse.ids().includes(shown.at(-1)!));
  await ws.waitFor(() => ws.ids().includes(shown.at(-1)!));
  await sleep(100);
  t.same(sse.ids(), shown, 'SSE');
  t.same(ws.ids(), shown, 'WebSocket');
  t.match(sse.of('notification').find((e) => e.data.id === shown[1])!.data, { critical: true, type: 'comment' }, 'critical is exposed');
  t.equal(sse.of('notification')[0]!.data.critical, false);
});

t.test('a PUT while streams are open applies to the next notification; muting is per user', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const alice = await connect(s, 'alice', streamQuery, {}, topics);
  const bob = await connect(s, 'bob', '?topic=deploys', {}, topics);
  t.teardown(() => (alice.close(), bob.close()));
  const before = await s.publish({ topic: 'deploys', title: 'before' });
  await alice.waitFor(() => alice.ids().includes(before.body.id));
  await putPrefs(s, 'alice');
  // The PUT is answered once committed and announced; the hub re-reads alice's preferences right after.
  await sleep(100);
  const after = await s.publish({ topic: 'deploys', title: 'after' });
  const marker = await s.publish({ topic: 'news', title: 'marker' });
  await alice.waitFor(() => alice.ids().includes(marker.body.id));
  await bob.waitFor(() => bob.ids().includes(after.body.id));
  t.same(alice.ids(), [before.body.id, marker.body.id], 'alice no longer gets deploys');
  t.same(bob.ids(), [before.body.id, after.body.id], 'bob still does');
  await putPrefs(s, 'alice', {});
  await sleep(100);
  const again = await s.publish({ topic: 'deploys', title: 'unmuted' });
  await alice.waitFor(() => alice.ids().includes(again.body.id));
  t.pass('unmuted again');
});

t.test('catch-up after a reconnect leaves muted ones out', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  await putPrefs(s, 'alice');
  const { shown } = await publishCases(s);
  for (const transport of ['sse', 'ws']) {
    const c =
      transport === 'sse'
        ? await connect(s, 'alice', `${streamQuery}&lastEventId=0`, {}, topics)
        : await wsConnect(s, 'alice', `${streamQuery}&lastEventId=0`, topics);
    t.teardown(() => c.close());
    await c.waitFor(() => c.ids().includes(shown.at(-1)!));
    await sleep(100);
    t.same(c.ids(), shown, transport);
  }
});

t.test('history hides muted ones unless includeMuted=true (flagged muted); the unread count skips them', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  await putPrefs(s, 'alice');
  const { shown, muted } = await publishCases(s);
  // History lists the caller's own and broadcasts, or with ?topic= those topics only: both, merged.
  const parts = ['?', '?topic=deploys&topic=news&'];
  const history = async (user: string, extra: string) => {
    const items: { id: number; muted: boolean }[] = [];
    for (const p of parts) items.push(...(await s.request('GET', `/notifications${p}${extra}`, user, undefined, topics)).body.items);
    return items.sort((a, b) => b.id - a.id);
  };
  const count = async (user: string) => {
    let c = 0;
    for (const p of parts) c += (await s.request('GET', `/notifications/unread-count${p}`, user, undefined, topics)).body.count as number;
    return c;
  };
  const ids = (items: { id: number }[]) => items.map((i) => i.id);
  const plain = await history('alice', '');
  t.same(ids(plain), [...shown].reverse());
  t.ok(plain.every((i) => i.muted === false));
  const all = await history('alice', 'includeMuted=true');
  t.same(ids(all), [...shown, ...muted].sort((a, b) => b - a));
  for (const item of all) t.equal(item.muted, muted.includes(item.id), `item ${item.id} muted flag`);
  t.same(ids(await history('alice', 'unread=true')), [...shown].reverse(), 'unread=true too');
  t.equal(await count('alice'), shown.length);
  t.equal(await count('bob'), 5, 'bob mutes nothing: topics and broadcast and his direct one');
});

t.test("the stream's unread count leaves muted ones out, and follows a PUT (SSE and WebSocket)", async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  await putPrefs(s, 'alice');
  await s.publish({ user: 'alice', type: 'comment', title: 'muted' });
  await s.publish({ user: 'alice', type: 'other', title: 'shown' });
  const sse = await connect(s, 'alice');
  const ws = await wsConnect(s, 'alice', '?lastEventId=0');
  t.teardown(() => (sse.close(), ws.close()));
  const wsCounts = () => ws.of('unread').map((f: { data: { count: number } }) => f.data.count);
  await sse.unread.waitFor((c) => c.length === 1);
  await ws.waitFor(() => wsCounts().length === 1);
  t.same([sse.unread.items[0], wsCounts()[0]], [1, 1], 'the first count skips the muted one');
  await putPrefs(s, 'alice', {});
  await sse.unread.waitFor((c) => c.length === 2);
  await ws.waitFor(() => wsCounts().length === 2);
  t.same([sse.unread.items[1], wsCounts()[1]], [2, 2], 'unmuted: counted again, sent without any read');
});
