// Preferences across two instances sharing PostgreSQL and Redis: a change made through one instance
// applies to live delivery on the other at once (the change is announced on the bus).
import t from 'tap';
import { startPostgres, startRedis, type PostgresServer, type RedisServer } from '../../support/backends.js';
import { sleep } from '../../support/util.js';
import { startServer } from '../support/server.js';
import { connect } from '../support/sse.js';

let redis: RedisServer;
let postgres: PostgresServer;
t.before(async () => {
  [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
});
t.teardown(async () => {
  await redis?.stop();
  await postgres?.stop();
});

t.test('a PUT on instance A mutes live delivery to a stream on instance B', async (t) => {
  const env = { HERALD_STORE: await postgres.newDatabase(), HERALD_BUS: redis.url };
  const a = await startServer({ env });
  t.teardown(() => a.close());
  const b = await startServer({ env });
  t.teardown(() => b.close());
  const onB = await connect(b, 'alice');
  t.teardown(() => onB.close());

  const before = await a.publish({ user: 'alice', type: 'chat', title: 'before' });
  await onB.waitFor(() => onB.ids().includes(before.body.id));
  t.equal((await a.request('PUT', '/preferences', 'alice', { types: { chat: { inapp: false } } })).status, 200);
  await sleep(300);
  const muted = await a.publish({ user: 'alice', type: 'chat', title: 'muted' });
  const critical = await b.publish({ user: 'alice', type: 'chat', critical: true, title: 'critical' });
  const other = await a.publish({ user: 'alice', type: 'mention', title: 'other' });
  await onB.waitFor(() => onB.ids().includes(other.body.id));
  await sleep(200);
  t.same(onB.ids(), [before.body.id, critical.body.id, other.body.id], `muted ${muted.body.id} not delivered on B`);
  t.equal((await b.request('GET', '/notifications/unread-count', 'alice')).body.count, 2, 'B counts alike: the mute applies to earlier chat too (critical and other)');
});
