// Preferences and Web Push across two instances sharing PostgreSQL and Redis: a change made through
// one instance applies to live delivery on the other at once (the change is announced on the bus);
// presence is shared through Redis, and each queued push is sent once.
import t from 'tap';
import { startBackends } from '../support/backends.js';
import { sleep } from '../../support/util.js';
import { startServer } from '../support/server.js';
import { connect } from '../support/sse.js';
import { PushService } from '../support/push-service.js';

const { redis, postgres } = await startBackends(t);

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

t.test('Web Push on two instances: a user online on B gets no push from A; each push is sent once', async (t) => {
  const env = {
    HERALD_STORE: await postgres.newDatabase(),
    HERALD_BUS: redis.url,
    HERALD_BUS_CHANNEL: 'herald:push-test',
    HERALD_PUSH_ALLOW_LOOPBACK_HTTP: 'true',
    HERALD_PUSH_POLL_MS: '50',
    // The same VAPID keys on both, as a deployment configures them.
    HERALD_VAPID_PUBLIC_KEY: 'BOePdzjAJZzFUjv1_m-BuLXmwhl5sc8El_jBSRYYgZIcVKrOe2eIQ68VGDdRvxI8J4-Lnih_0FNtI-xMJfMmTE8',
    HERALD_VAPID_PRIVATE_KEY: 'tt0BHkcomyp-5FnoGpA0Y7CqfUBsoA5KiRiiJll2Pks',
  };
  const a = await startServer({ env });
  t.teardown(() => a.close());
  const b = await startServer({ env });
  t.teardown(() => b.close());
  const push = new PushService(() => env.HERALD_VAPID_PUBLIC_KEY);
  await push.start();
  t.teardown(() => push.close());
  for (const user of ['alice', 'bob']) t.equal((await a.request('POST', '/push/subscriptions', user, push.device(user).subscription)).status, 201);
  const onB = await connect(b, 'alice');
  t.teardown(() => onB.close());
  await sleep(200);

  const ids: number[] = [];
  for (let i = 0; i < 20; i++) ids.push((await (i % 2 ? a : b).publish({ users: ['alice', 'bob'], title: `n${i}` })).body.id);
  await push.waitFor((p) => p.length >= 20, 20_000);
  await sleep(500);
  t.same(push.ofDevice('alice'), [], 'alice has a stream open on B: no push, whichever instance sent');
  t.same(push.ofDevice('bob').map((p) => p.payload.id as number).sort((x, y) => x - y), ids, 'bob: each once, both instances sending');
});
