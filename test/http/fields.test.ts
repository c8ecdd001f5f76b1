// The fields an inbox shows (contract A): url, icon, actor, actions. Validated on publish, stored,
// and the same on every way a client sees a notification: SSE, WebSocket, history, the publish answer.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { tempDir } from '../../support/util.js';
import { startServer } from '../support/server.js';
import { connect } from '../support/sse.js';
import { wsConnect } from '../support/ws.js';

const fields = {
  url: '/orders/42',
  icon: 'https://cdn.example.com/icons/box.png',
  actor: { name: 'Ada Lovelace', avatar: 'https://cdn.example.com/ada.png' },
  actions: [
    { label: 'Track', url: 'https://shop.example.com/track/42' },
    { label: 'Return', url: '/orders/42/return' },
  ],
};
const absent = { url: null, icon: null, actor: null, actions: null };

t.test('the fields round-trip through SSE, WebSocket and history; absent ones are null', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const sse = await connect(s, 'alice');
  const ws = await wsConnect(s, 'alice');
  await ws.command('ping');
  t.teardown(() => (sse.close(), ws.close()));

  const full = await s.publish({ user: 'alice', title: 'Shipped', ...fields });
  t.equal(full.status, 201);
  t.match(full.body, fields, 'the publish answer');
  const bare = await s.publish({ user: 'alice', title: 'Plain', url: null, actor: null });
  t.match(bare.body, absent, 'null is the same as absent');

  await sse.waitFor((e) => e.length === 2);
  await ws.waitFor((f) => f.filter((x) => x.event === 'notification').length === 2);
  t.match(sse.events[0]!.data, { ...fields, id: full.body.id }, 'SSE');
  t.match(sse.events[1]!.data, absent, 'SSE, absent');
  t.match(ws.of('notification')[0].data, fields, 'WebSocket');
  t.match(ws.of('notification')[1].data, absent, 'WebSocket, absent');
  const history = (await s.request('GET', '/notifications', 'alice')).body.items;
  t.match(history[1], fields, 'history');
  t.match(history[0], absent, 'history, absent');
  const resumed = await connect(s, 'alice', '?lastEventId=0');
  t.teardown(() => resumed.close());
  await resumed.waitFor((e) => e.length === 2);
  t.match(resumed.events[0]!.data, fields, 'catch-up');
});

t.test('bad values are refused with a 400 naming the field', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const link = 'must be an absolute http:// or https:// URL or a path starting with "/"';
  const image = 'must be an absolute http:// or https:// URL';
  const cases: [Record<string, unknown>, string][] = [
    [{ url: 'javascript:alert(1)' }, `body/url ${link}`],
    [{ url: '//evil.example.com/x' }, `body/url ${link}`],
    [{ url: 'orders/42' }, `body/url ${link}`],
    [{ url: '/a b' }, `body/url ${link}`],
    [{ url: `/${'x'.repeat(2048)}` }, 'body/url must NOT have more than 2048 characters'],
    [{ icon: '/relative.png' }, `body/icon ${image}`],
    [{ icon: 'data:image/png;base64,AAAA' }, `body/icon ${image}`],
    [{ actor: { avatar: 'https://x.example/a.png' } }, "body/actor must have required property 'name'"],
    [{ actor: { name: 'x'.repeat(201) } }, 'body/actor/name must NOT have more than 200 characters'],
    [{ actor: { name: 'Ada', avatar: 'ftp://x.example/a.png' } }, `body/actor/avatar ${image}`],
    [{ actor: { name: 'Ada', email: 'a@x' } }, 'body/actor has an unknown field "email"'],
    [{ actor: 'Ada' }, 'body/actor must be object,null'],
    [{ actions: [{ label: 'a', url: '/a' }, { label: 'b', url: '/b' }, { label: 'c', url: '/c' }, { label: 'd', url: '/d' }] }, 'body/actions must NOT have more than 3 items'],
    [{ actions: [{ label: '', url: '/a' }] }, 'body/actions/0/label must NOT have fewer than 1 characters'],
    [{ actions: [{ label: 'x'.repeat(65), url: '/a' }] }, 'body/actions/0/label must NOT have more than 64 characters'],
    [{ actions: [{ label: 'Open' }] }, "body/actions/0 must have required property 'url'"],
    [{ actions: [{ label: 'Open', url: 'mailto:a@x' }] }, `body/actions/0/url ${link}`],
  ];
  for (const [extra, message] of cases) {
    const r = await s.publish({ user: 'alice', title: 'x', ...extra });
    t.same(r.body, { statusCode: 400, code: 'validation_failed', error: 'Bad Request', message }, JSON.stringify(extra).slice(0, 80));
  }
  t.same((await s.request('GET', '/notifications', 'alice')).body.items, [], 'nothing was stored');
});

const onPostgres = process.env.HERALD_TEST_STORE === 'postgres';
t.test('an older SQLite file gains the new columns on start, its rows kept', { skip: onPostgres && 'a SQLite file' }, async (t) => {
  const dataDir = tempDir();
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  mkdirSync(dataDir, { recursive: true });
  // The notifications table as the first release created it, with one row.
  const db = new Database(join(dataDir, 'herald.db'));
  db.exec(`CREATE TABLE notifications (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL, body TEXT, data TEXT,
    type TEXT, topic TEXT, broadcast INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL);
    INSERT INTO notifications (title, broadcast, created_at) VALUES ('from before', 1, '${new Date().toISOString()}');`);
  db.close();

  const s = await startServer({ dataDir });
  const old = (await s.request('GET', '/notifications', 'alice')).body.items;
  t.match(old, [{ id: 1, title: 'from before', broadcast: true, critical: false, ...absent }], 'the old row, with null fields (critical: false)');
  const added = await s.publish({ user: 'alice', title: 'new', ...fields });
  t.equal(added.body.id, 2);
  await s.close();
  // And a second start of the migrated file changes nothing.
  const again = await startServer({ dataDir });
  t.teardown(() => again.close());
  t.match((await again.request('GET', '/notifications', 'alice')).body.items, [{ id: 2, ...fields }, { id: 1, ...absent }]);
});
