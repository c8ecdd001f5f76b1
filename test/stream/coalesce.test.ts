// Write coalescing (src/stream/cork.ts): under load, the events of several commits in a row reach a
// stream's socket in one write; an isolated event is written in its own tick, not held. Counted on
// the server's side of each stream's real TCP socket: one `_write`/`_writev` call is one write to
// the kernel, however many events it carries.
import net, { type AddressInfo, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import t, { type Test } from 'tap';
import { Publisher } from '../../src/domain/publisher.js';
import { Flusher, HeldSocket } from '../../src/stream/cork.js';
import { sleep } from '../../support/util.js';
import { startServer, type Server } from '../support/server.js';
import { connect } from '../support/sse.js';
import { waitUntil } from '../support/wait.js';
import { wsConnect } from '../support/ws.js';

const windowMs = 50;

interface Writes {
  /** Writes handed to the kernel. */
  writes: number;
  /** Buffers in them. */
  chunks: number;
}

/** Counts the writes the server makes on `socket`, by wrapping the two methods Writable flushes through. */
function countWrites(socket: Socket): Writes {
  const n: Writes = { writes: 0, chunks: 0 };
  const writev = socket._writev!.bind(socket);
  const write = socket._write.bind(socket);
  socket._writev = (chunks, cb) => {
    n.writes++;
    n.chunks += chunks.length;
    writev(chunks, cb);
  };
  socket._write = (chunk, encoding, cb) => {
    n.writes++;
    n.chunks++;
    write(chunk, encoding, cb);
  };
  return n;
}

/** Keeps the event loop running (not waiting for I/O), as a loaded server's is. */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** The server's side of the next connection opened by `open`, and what `open` resolved with. */
async function serverSocketOf<T>(s: Server, open: () => Promise<T>): Promise<[Socket, T]> {
  const sockets: Socket[] = [];
  const onConnection = (socket: Socket) => sockets.push(socket);
  s.app.server.on('connection', onConnection);
  const client = await open();
  s.app.server.off('connection', onConnection);
  if (sockets.length !== 1) throw new Error(`expected one connection, got ${sockets.length}`);
  return [sockets[0]!, client];
}

/**
 * An isolated event (over HTTP), then a burst of `count` notifications to `user`, one commit each, in
 * successive turns of a busy event loop (through the app's own publish path, so that the spacing is
 * the loop's, not an HTTP round trip's on a loaded machine). Returns the writes of each part.
 */
async function isolatedThenBurst(t: Test, s: Server, w: Writes, user: string, count: number): Promise<{ isolated: Writes; burst: Writes }> {
  // Nothing written in the last window: the next event is isolated.
  await sleep(windowMs * 2);
  const start = { ...w };
  t.equal((await s.publish({ user, title: 'isolated' })).status, 201);
  // Written in the tick that committed it, so before the 201 reached us: not held for the window.
  const isolated = { writes: w.writes - start.writes, chunks: w.chunks - start.chunks };
  const publisher = new Publisher(s.store, s.bus, s.app.metrics, s.app.log);
  const before = { ...w };
  // A loop that has been running, not waiting, for the last 20 ms and more: busy.
  spin(25);
  for (let i = 0; i < count; i++) {
    spin(2);
    t.equal((await publisher.publish({ title: `n${i}`, target: { users: [user] } })).status, 'created');
  }
  await sleep(windowMs * 2);
  return { isolated, burst: { writes: w.writes - before.writes, chunks: w.chunks - before.chunks } };
}

t.test('SSE: under load, successive events leave in fewer writes than events; an isolated one at once', async (t) => {
  const s = await startServer({ env: { HERALD_WRITE_COALESCE_MS: String(windowMs) } });
  t.teardown(() => s.close());
  const [socket, c] = await serverSocketOf(s, () => connect(s, 'ann'));
  t.teardown(() => c.close());
  const w = countWrites(socket);
  const { isolated, burst } = await isolatedThenBurst(t, s, w, 'ann', 8);
  t.equal(isolated.writes, 1, 'the isolated event was written before its 201 was answered');
  await c.waitFor((e) => e.length >= 9);
  t.same(
    c.events.map((e) => e.data.title),
    ['isolated', ...Array.from({ length: 8 }, (_, i) => `n${i}`)],
    'every event, in order',
  );
  t.ok(burst.writes <= 4, `8 events of 8 commits in ${burst.writes} writes (one per event without coalescing)`);
});

t.test('WebSocket: whole frames, one buffer each, coalesced as SSE events are; large frames too', async (t) => {
  const s = await startServer({ env: { HERALD_WRITE_COALESCE_MS: String(windowMs), HERALD_BODY_LIMIT: String(256 * 1024) } });
  t.teardown(() => s.close());
  const [socket, c] = await serverSocketOf(s, async () => {
    const c = await wsConnect(s, 'bob');
    await c.command('resume');
    return c;
  });
  t.teardown(() => c.close());
  const w = countWrites(socket);
  const { isolated, burst } = await isolatedThenBurst(t, s, w, 'bob', 8);
  t.same(isolated, { writes: 1, chunks: 1 }, 'the isolated event: one frame in one buffer, before its 201');
  t.ok(burst.writes <= 4, `8 events of 8 commits in ${burst.writes} writes`);
  t.equal(burst.chunks, 8, 'one buffer per frame (header and payload together), shared by every socket');

  // Payloads past the 7-bit and the 16-bit frame lengths.
  const sizes = [200, 70_000];
  for (const n of sizes) t.equal((await s.publish({ user: 'bob', title: 'big', data: { pad: 'x'.repeat(n) } })).status, 201);
  await c.waitFor((f) => f.filter((x) => x.event === 'notification').length >= 11);
  const notes = c.of('notification');
  t.same(
    notes.map((f) => f.data.title),
    ['isolated', ...Array.from({ length: 8 }, (_, i) => `n${i}`), 'big', 'big'],
    'every frame parsed by a real client, in order',
  );
  t.same(notes.slice(-2).map((f) => f.data.data.pad.length), sizes, 'large frames arrive whole');
});

/** `count` connected loopback socket pairs: the client ends, and the server's (accepted) ends. */
async function socketPairs(t: Test, count: number): Promise<{ clients: Socket[]; accepted: Socket[] }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const accepted: Socket[] = [];
  const gotAll = new Promise<void>((r) => server.on('connection', (s: Socket) => accepted.push(s) === count && r()));
  const port = (server.address() as AddressInfo).port;
  const connectOne = () =>
    new Promise<Socket>((resolve) => {
      const c: Socket = net.connect(port, '127.0.0.1', () => resolve(c));
    });
  const clients = await Promise.all(Array.from({ length: count }, connectOne));
  await gotAll;
  t.teardown(() => [...clients, ...accepted].forEach((s) => s.destroy()));
  return { clients, accepted };
}

t.test('a turn of the event loop uncorks at most one slice of sockets; the rest follow in later turns, every byte in order', async (t) => {
  const { clients, accepted } = await socketPairs(t, 5);
  const received = clients.map(() => '');
  clients.forEach((c, i) => c.on('data', (d: Buffer) => (received[i] += d.toString())));

  const flusher = new Flusher(0, 2);
  const held = accepted.map((s) => new HeldSocket(s));
  const write = (i: number, text: string) => {
    flusher.hold(held[i]!);
    held[i]!.out.write(text);
  };
  held.forEach((_, i) => write(i, 'a'));
  const corked = () => held.filter((h) => h.out.writableCorked).length;
  await new Promise((r) => process.nextTick(r));
  t.equal(corked(), 3, 'the tick that wrote to 5 sockets uncorked 2');
  // A write to a socket still waiting for its slice joins its held bytes.
  write(4, 'b');
  await new Promise((r) => setImmediate(r));
  t.equal(corked(), 1, 'the next turn, 2 more');
  await new Promise((r) => setImmediate(r));
  t.equal(corked(), 0, 'then the last');
  await waitUntil('every client got its bytes, in order', () => received.every((r, i) => r === (i === 4 ? 'ab' : 'a')));
  t.same(received, ['a', 'a', 'a', 'a', 'ab']);
});

t.test('by default a turn uncorks at most 8 sockets, so connections are still accepted while a broadcast goes out', async (t) => {
  const { accepted } = await socketPairs(t, 12);
  const flusher = new Flusher(0);
  const held = accepted.map((s) => new HeldSocket(s));
  for (const h of held) {
    flusher.hold(h);
    h.out.write('a');
  }
  const corked = () => held.filter((h) => h.out.writableCorked).length;
  await new Promise((r) => process.nextTick(r));
  t.equal(corked(), 4, 'the tick that wrote to 12 sockets uncorked 8');
  await new Promise((r) => setImmediate(r));
  t.equal(corked(), 0, 'the next turn, the other 4');
});
