// Crash durability: a 201 means committed. The real server (default HERALD_SQLITE_SYNC=full) is killed
// with SIGKILL in the middle of a concurrent publish load, restarted on the same data dir, and every
// acknowledged notification must still be there, be replayed by catch-up, and ids must keep increasing.
import t from 'tap';
import { rmSync } from 'node:fs';
import { tempDir } from '../../support/util.js';
import { publishTo, type Json } from '../support/http.js';
import { spawnServer } from '../support/server.js';
import { SseClient } from '../support/sse.js';
import { tokenFor } from '../support/tokens.js';
import { waitUntil } from '../support/wait.js';

const user = 'crash-user';
const topic = 'crash-topic';
// Every target shape, so each insert path (recipients rows, topic, broadcast) is exercised by the crash.
const targets = [{ user }, { users: [user, 'someone-else'] }, { topic }, { broadcast: true }];
/** `user`'s token, allowed to read `topic`. */
const reader = tokenFor(user, { topics: [topic] });

/** One history listing of `user`, newest first, all pages (`query`: e.g. `&topic=...`). */
async function historyPages(url: string, query: string): Promise<Json[]> {
  const items: Json[] = [];
  let before = '';
  for (let page = 0; page < 1000; page++) {
    const res = await fetch(`${url}/notifications?limit=200${query}${before}`, {
      headers: { authorization: `Bearer ${reader}` },
    });
    const body = (await res.json()) as Json;
    items.push(...body.items);
    if (body.nextCursor === null) return items;
    before = `&before=${body.nextCursor}`;
  }
  throw new Error('history did not end');
}

/** Every notification `user` may see: their own and broadcasts, then (`?topic=` lists a topic only) `topic`'s. */
async function history(url: string): Promise<Json[]> {
  return [...(await historyPages(url, '')), ...(await historyPages(url, `&topic=${topic}`))];
}

t.test('every 201 survives kill -9 mid-load, is replayed by catch-up, and ids are never reused', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = await spawnServer({ HERALD_DATA_DIR: dir });
  t.teardown(() => first.stop('SIGKILL'));

  const acked = new Map<number, string>();
  const reused: number[] = [];
  let sent = 0;
  let failed = 0;
  let killed = false;
  const publisher = async (p: number) => {
    for (let i = 0; i < 100_000 && !killed; i++) {
      const title = `p${p}-${i}`;
      sent++;
      try {
        const res = await publishTo(first.url, { ...targets[i % targets.length], title, data: { p, i } });
        if (res.status !== 201) throw new Error(`publish answered ${res.status}: ${JSON.stringify(res.body)}`);
        if (acked.has(res.body.id)) reused.push(res.body.id);
        acked.set(res.body.id, title);
      } catch (err) {
        // Only the kill may interrupt a publish; before it, every publish must succeed.
        if (!killed) throw err;
        failed++;
        return;
      }
    }
  };
  const loops = Array.from({ length: 8 }, (_, p) => publisher(p));
  // Kill once a few hundred publishes are acknowledged: well into the load, with others in flight.
  await waitUntil('300 acknowledged publishes', () => acked.size >= 300, 60_000);
  t.comment(`${acked.size} publishes acknowledged when the kill is sent`);
  killed = true;
  const exit = await first.stop('SIGKILL');
  t.equal(exit.signal, 'SIGKILL', 'the server was killed, not stopped');
  await Promise.all(loops);
  t.same(reused, [], 'no id was acknowledged twice');
  t.comment(`sent ${sent}, acknowledged ${acked.size}, interrupted by the kill ${failed}`);

  const second = await spawnServer({ HERALD_DATA_DIR: dir });
  t.teardown(() => second.stop('SIGKILL'));

  const stored = await history(second.url);
  const storedIds = new Set(stored.map((n) => n.id as number));
  t.equal(storedIds.size, stored.length, 'history has no duplicates');
  const lost = [...acked.keys()].filter((id) => !storedIds.has(id));
  t.same(lost, [], 'every acknowledged notification is in the store after the crash');
  const altered = stored.filter((n) => acked.has(n.id) && n.title !== acked.get(n.id)).map((n) => n.id as number);
  t.same(altered, [], 'each is intact (the title its 201 answered for)');
  // Rows committed whose 201 was lost with the process are allowed; anything else is not.
  t.ok(stored.length <= sent, 'nothing was stored that was not sent');

  const maxStored = Math.max(...storedIds);
  const client = new SseClient(`${second.url}/events?topic=${topic}`, reader, { 'last-event-id': '0' });
  t.teardown(() => client.close());
  await client.waitFor(() => client.ids().includes(maxStored), 30_000);
  const replayed = client.ids();
  t.same(replayed, [...storedIds].sort((a, b) => a - b), 'catch-up from 0 replays exactly the stored notifications, in id order, once each');
  t.equal(client.of('reload').length, 0, 'no reload: the whole history fits the catch-up limit');

  const after = await publishTo(second.url, { user, title: 'after restart' });
  t.equal(after.status, 201);
  t.ok(after.body.id > maxStored, `the first id after the restart (${after.body.id}) is above every stored id (${maxStored})`);
  t.ok(after.body.id > Math.max(...acked.keys()), 'and above every id acknowledged before the crash');
  await client.waitFor(() => client.ids().includes(after.body.id), 10_000);
  t.same(client.ids(), [...replayed, after.body.id], 'then it continues live');
});
