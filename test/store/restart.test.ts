import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { freePort, tempDir } from '../../support/util.js';
import { publishTo } from '../support/http.js';
import { spawnServer } from '../support/server.js';
import { SseClient } from '../support/sse.js';
import { publisherKey, tokenFor } from '../support/tokens.js';

/** Publishes and returns the new id; anything but a 201 fails the test. */
async function publish(url: string, body: Record<string, unknown>, key = publisherKey): Promise<number> {
  const r = await publishTo(url, body, { authorization: `Bearer ${key}` });
  if (r.status !== 201) throw new Error(`publish: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.id as number;
}

t.test('a restart keeps history, ids keep increasing, and EventSource resumes by itself', async (t) => {
  const dir = tempDir();
  const port = String(await freePort());
  const env = { HERALD_DATA_DIR: dir, PORT: port, HERALD_RETRY_MS: '200' };
  let server = await spawnServer(env);
  t.teardown(() => server.stop('SIGKILL'));
  const client = new SseClient(`${server.url}/events`, tokenFor('alice'));
  t.teardown(() => client.close());
  await client.opened;
  const before = [await publish(server.url, { user: 'alice', title: 'one' }), await publish(server.url, { broadcast: true, title: 'two' })];
  await client.waitFor((e) => e.length >= 2);

  t.equal((await server.stop('SIGTERM')).code, 0, 'a clean stop');
  server = await spawnServer(env);
  // Published after the restart, very likely before the client has reconnected: caught up by Last-Event-ID.
  const after = [await publish(server.url, { user: 'alice', title: 'three' }), await publish(server.url, { user: 'alice', title: 'four' })];
  t.ok(after[0]! > before[1]!, 'ids keep increasing across restarts');
  await client.waitFor((e) => e.length >= 4, 10_000);
  await new Promise((r) => setTimeout(r, 300));
  t.same(client.ids(), [...before, ...after], 'every notification once, in order, across the restart');

  const history = await fetch(`${server.url}/notifications`, { headers: { authorization: `Bearer ${tokenFor('alice')}` } });
  t.same(((await history.json()) as { items: { id: number }[] }).items.map((n) => n.id), [...after, ...before].sort((a, b) => b - a));
});

t.test('with nothing configured, the generated secret and key are kept across restarts', async (t) => {
  const dir = tempDir();
  const env = { HERALD_DATA_DIR: dir, HERALD_JWT_SECRET: '', HERALD_PUBLISHER_KEY: '' };
  let server = await spawnServer(env);
  t.teardown(() => server.stop('SIGKILL'));
  const kept = JSON.parse(readFileSync(join(dir, 'secrets.json'), 'utf8')) as { jwtSecret: string; publisherKey: string };
  t.match(server.output(), kept.publisherKey, 'the start banner prints the publisher key');
  const token = /TOKEN=(\S+)/.exec(server.output())?.[1];
  t.ok(token, 'and a ready token');
  const id = await publish(server.url, { user: 'alice', title: 'hi' }, kept.publisherKey);
  await server.stop('SIGTERM');
  server = await spawnServer(env);
  const r = await fetch(`${server.url}/notifications`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(r.status, 200, 'a token from before the restart is still valid');
  t.same(((await r.json()) as { items: { id: number }[] }).items.map((n) => n.id), [id]);
  t.equal(await publish(server.url, { user: 'alice', title: 'again' }, kept.publisherKey), id + 1);
});

t.test('an invalid setting stops the start with a message naming it', async (t) => {
  await t.rejects(spawnServer({ HERALD_DATA_DIR: tempDir(), HERALD_HEARTBEAT_MS: 'soon' }), /HERALD_HEARTBEAT_MS must be a whole number/);
});
