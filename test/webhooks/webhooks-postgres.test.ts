// Webhooks and receipts on PostgreSQL: the same as on SQLite, and two instances on PostgreSQL + Redis
// sending each webhook once.
import pg from 'pg';
import t from 'tap';
import { startBackends } from '../support/backends.js';
import { sleep } from '../../support/util.js';
import { connect } from '../support/sse.js';
import { deadWebhooksPruned, readAllTimesPruned, receiptsAndEvents, receiverFor, serverFor } from '../support/webhooks.js';

t.test('PostgreSQL', async (t) => {
  const { redis, postgres } = await startBackends(t);

  t.test('receipts and events, as on SQLite', async (t) => receiptsAndEvents(t, { HERALD_STORE: await postgres.newDatabase() }));

  t.test('retention drops the read-all times it passed, as on SQLite', async (t) => {
    const url = await postgres.newDatabase();
    await readAllTimesPruned(t, { HERALD_STORE: url }, async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        return Number((await c.query<{ c: string }>('SELECT count(*) AS c FROM read_all_log')).rows[0]!.c);
      } finally {
        await c.end();
      }
    });
  });

  t.test('retention drops dead webhooks older than its cutoff, and only those, as on SQLite', async (t) =>
    deadWebhooksPruned(t, { HERALD_STORE: await postgres.newDatabase() }));

  t.test('two instances on PostgreSQL + Redis send each webhook once', async (t) => {
    const receiver = await receiverFor(t);
    const env = { HERALD_STORE: await postgres.newDatabase(), HERALD_BUS: redis.url };
    const a = await serverFor(t, receiver, env);
    const b = await serverFor(t, receiver, env);
    // A stream of each user on each instance: both hubs see every delivery and race to record it.
    const users = ['u1', 'u2', 'u3'];
    for (const s of [a, b]) {
      for (const u of users) {
        const c = await connect(s, u);
        t.teardown(() => c.close());
      }
    }
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) ids.push((await (i % 2 ? a : b).publish({ users, title: `n${i}` })).body.id);
    for (const [i, id] of ids.entries()) await (i % 2 ? b : a).request('POST', `/notifications/${id}/read`, users[i % 3]!);
    await receiver.waitFor(() => receiver.of('notification.delivered').length >= 60 && receiver.of('notification.read').length >= 20);
    await sleep(500);
    const delivered = receiver.of('notification.delivered').map((r) => `${r.payload.data.user}:${r.payload.data.notificationId}`);
    t.equal(delivered.length, 60, 'one delivered webhook per (user, notification), though two instances delivered each');
    t.equal(new Set(delivered).size, 60);
    t.equal(receiver.requests.length, 80, 'no webhook sent twice: each claimed by one instance');
    t.equal(new Set(receiver.requests.map((r) => r.id)).size, 80);
  });
});
