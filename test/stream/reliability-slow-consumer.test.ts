// Slow consumers: a client that stops reading must not make the server hold its output without bound.
// Past HERALD_MAX_PENDING_BYTES of unsent output its stream is cut; the client reconnects with its last
// id and still ends with every event, in order, exactly once.
import net from 'node:net';
import t from 'tap';
import { startServer } from '../support/server.js';
import { connect, parseSse, rawStream, SseClient } from '../support/sse.js';
import { tokenFor } from '../support/tokens.js';

const user = 'slow';
/** Publishing goes on until the stalled stream is cut (however much the kernel buffers), then this many more. */
const afterCut = 300;
const maxEvents = 20_000;
const bodyBytes = 5_000;
const maxPending = 256 * 1024;

/** The body of the stream's response (close-delimited, not chunked), up to where it was cut. */
function bodyOf(raw: string): string {
  return raw.slice(raw.indexOf('\r\n\r\n') + 4);
}

t.test('a client that stops reading is cut off with bounded server memory, and catches up after', async (t) => {
  const s = await startServer({ env: { HERALD_MAX_PENDING_BYTES: String(maxPending), HERALD_RETRY_MS: '100' } });
  t.teardown(() => s.close());
  // The server's socket of the stalled stream (the stream writes to it directly), to watch how much
  // output it holds for the client.
  let serverSide: net.Socket | undefined;
  s.app.server.prependListener('request', (req) => {
    if (req.url === '/events' && req.headers.authorization === `Bearer ${tokenFor(user)}`) serverSide = req.socket;
  });

  const stalled = await rawStream(s.url, user);
  t.teardown(() => stalled.socket.destroy());
  // From here on the client reads nothing: the kernel's buffers fill, then the server's queue would.
  stalled.socket.pause();
  // A healthy stream of another user alongside: only the stream that stopped reading is cut.
  const healthy = await connect(s, 'healthy');
  t.teardown(() => healthy.close());
  t.ok(serverSide, 'the stalled stream is open');

  let maxQueued = 0;
  const rssBefore = process.memoryUsage().rss;
  const padding = 'x'.repeat(bodyBytes);
  const ids: number[] = [];
  let next = 0;
  let stopAt = maxEvents;
  const publisher = async () => {
    while (next < stopAt) {
      const i = next++;
      const res = await s.publish({ users: [user, 'healthy'], title: `n${i}`, body: padding });
      if (res.status !== 201) throw new Error(`publish answered ${res.status}`);
      ids.push(res.body.id as number);
      maxQueued = Math.max(maxQueued, serverSide!.writableLength);
      // Events published after the cut reach this client only by its catch-up.
      if (serverSide!.destroyed && stopAt === maxEvents) stopAt = next + afterCut;
    }
  };
  await Promise.all(Array.from({ length: 8 }, publisher));
  ids.sort((a, b) => a - b);
  const events = ids.length;
  const published = events * (bodyBytes + 150);
  t.comment(
    `published ~${(published / 1e6).toFixed(1)} MB to the stalled stream; most it ever held unsent: ${(maxQueued / 1e3).toFixed(0)} kB; ` +
      `process RSS ${(rssBefore / 1e6).toFixed(0)} -> ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`,
  );
  t.ok(serverSide!.destroyed, 'the server cut the stream of the client that stopped reading');
  t.ok(maxQueued <= maxPending + bodyBytes + 1000, `its unsent output stayed within the bound (${maxQueued} <= ${maxPending} + one event)`);
  await healthy.waitFor(() => healthy.ids().length === events, 30_000);
  t.same(healthy.ids(), ids, 'the healthy stream got everything, live, in order');

  // Read what the kernel buffered: the server must have ended the stalled stream, not kept feeding it.
  stalled.socket.resume();
  const cut = await Promise.race([stalled.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 15_000))]);
  t.ok(cut, 'the client sees its stream end after what the kernel had buffered');
  t.comment(`the client received ${(stalled.text().length / 1e6).toFixed(1)} MB (the kernel's socket buffers) before the cut`);

  // A client's parser drops an event cut in the middle; resume from the last complete one.
  const body = bodyOf(stalled.text());
  const first = parseSse(body.slice(0, body.lastIndexOf('\n\n') + 2)).filter((e) => e.event === 'notification');
  const firstIds = first.map((e) => Number(e.id));
  t.ok(firstIds.length > 0 && firstIds.length < events, `${firstIds.length} events arrived before the cut`);
  t.same(firstIds, ids.slice(0, firstIds.length), 'those are the oldest ones, in order');

  const resumed = new SseClient(`${s.url}/events`, tokenFor(user), { 'last-event-id': String(firstIds.at(-1)) });
  t.teardown(() => resumed.close());
  let opens = 0;
  resumed.es.addEventListener('open', () => opens++);
  await resumed.waitFor(() => resumed.ids().includes(ids.at(-1)!), 60_000);
  t.same([...firstIds, ...resumed.ids()], ids, 'with the catch-up it has every event, in order, exactly once');
  t.equal(opens, 1, 'the catch-up arrived on one connection: a client that reads is not cut');
});
