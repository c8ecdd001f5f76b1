// Graceful shutdown of the real server process: on SIGTERM/SIGINT it stops accepting, finishes the
// publishes in flight (their 201s arrive and their rows are committed), ends every stream so clients
// reconnect elsewhere, closes the database cleanly and exits 0, in bounded time even if a client stalls.
import { existsSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { tempDir } from '../../support/util.js';
import { historyIds, publishTo, type Json } from '../support/http.js';
import { spawnServer } from '../support/server.js';
import { publisherKey, tokenFor } from '../support/tokens.js';
import { waitUntil } from '../support/wait.js';

interface OpenStream {
  /** Resolves with how the response finished: "end" (cleanly ended by the server) or an error. */
  finished: Promise<string>;
  text: () => string;
}

/** A raw SSE stream (no automatic reconnect), to see exactly how the server ends it. */
function openStream(url: string, user: string): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/events`, { headers: { authorization: `Bearer ${tokenFor(user)}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      const finished = new Promise<string>((done) => {
        res.on('end', () => done('end'));
        res.on('error', (err) => done(`error: ${err.message}`));
        res.on('aborted', () => done('aborted'));
      });
      res.on('data', (d: string) => {
        text += d;
        // The stream is open (and joined to the hub) once its first bytes arrive.
        if (text.startsWith('retry:')) resolve({ finished, text: () => text });
      });
    });
    req.on('error', reject);
  });
}

/** A publish whose body is sent all but its last bytes: a request the server is in the middle of. */
async function heldPublish(url: string, body: Record<string, unknown>) {
  const { port } = new URL(url);
  const json = JSON.stringify(body);
  const socket = net.connect(Number(port), '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let response = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (response += d));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('error', () => {});
  socket.write(
    `POST /notifications HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${publisherKey}\r\n` +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(json)}\r\n\r\n${json.slice(0, -5)}`,
  );
  return {
    /** Sends the rest of the body; resolves with the status and JSON body of the answer. */
    async finish(): Promise<{ status: number; body: Json }> {
      socket.write(json.slice(-5));
      const deadline = Date.now() + 10_000;
      while (!/\r\n\r\n[\s\S]*\}\s*$/.test(response) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(response)?.[1] ?? 0);
      const payload = response.slice(response.indexOf('\r\n\r\n') + 4);
      // The answer may be chunked: the JSON object is the part between the first "{" and the last "}".
      return { status, body: JSON.parse(payload.slice(payload.indexOf('{'), payload.lastIndexOf('}') + 1)) };
    },
    closed,
    destroy: () => socket.destroy(),
  };
}

function canConnect(url: string): Promise<boolean> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect(Number(port), '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

t.test('SIGTERM: stop accepting, finish in-flight publishes, end streams, close the database, exit 0', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const server = await spawnServer({ HERALD_DATA_DIR: dir });
  t.teardown(() => server.stop('SIGKILL'));

  const streams = await Promise.all(['ann', 'ann', 'bob'].map((u) => openStream(server.url, u)));
  const held = await heldPublish(server.url, { user: 'ann', title: 'in flight during shutdown' });
  t.teardown(() => held.destroy());
  // Give the server time to read the held request's headers: it is now in the middle of that request.
  await new Promise((r) => setTimeout(r, 200));
  // Publishers that keep going across the signal: each publish is either answered 201 (and then must
  // be stored) or refused; none may be acknowledged and lost.
  const results: { status: number; body: Json }[] = [];
  const publisher = async () => {
    for (let i = 0; i < 10_000; i++) {
      const r = await publishTo(server.url, { user: 'ann', title: `racing ${i}` }).catch((err: Error) => ({ status: 0, body: err.message }));
      results.push(r);
      if (r.status !== 201) return;
    }
  };
  const loops = Array.from({ length: 4 }, publisher);
  await waitUntil('publishes before the signal', () => results.length >= 20);
  const signalledAt = Date.now();
  const exited = server.stop('SIGTERM');

  const ends = await Promise.all(streams.map((s) => s.finished));
  t.same(ends, ['end', 'end', 'end'], 'every stream is ended cleanly, so its client reconnects elsewhere');
  await waitUntil('the listener to close', async () => !(await canConnect(server.url)), 5_000);
  t.pass('new connections are refused once shutdown has begun');
  t.equal(server.proc.exitCode, null, 'the process is still running: it waits for the publish in flight');

  const answer = await held.finish();
  t.equal(answer.status, 201, 'the publish in flight is answered 201');
  t.type(answer.body.id, 'number');
  const exit = await exited;
  const tookMs = Date.now() - signalledAt;
  t.same(exit, { code: 0, signal: null }, 'exit code 0');
  t.ok(tookMs < 10_000, `stopped in ${tookMs} ms`);
  t.notOk(existsSync(join(dir, 'herald.db-wal')), 'the database was closed cleanly (WAL checkpointed and removed)');

  await Promise.all(loops);
  const acknowledged = results.filter((r) => r.status === 201).map((r) => r.body.id as number);
  const other = results.filter((r) => r.status !== 201).map((r) => r.status);
  t.ok(other.every((s) => s === 0 || s === 503), `publishes after the signal are refused (503) or not connected: ${JSON.stringify(other)}`);
  t.comment(`racing publishes: ${acknowledged.length} acknowledged, ${other.length} refused`);

  const again = await spawnServer({ HERALD_DATA_DIR: dir });
  t.teardown(() => again.stop('SIGKILL'));
  const ids = await historyIds(again.url, 'ann');
  t.ok(ids.includes(answer.body.id), 'the publish answered during shutdown is committed');
  t.same(acknowledged.filter((id) => !ids.includes(id)), [], 'every publish acknowledged around the signal is committed');
});

t.test('SIGINT with a client that never finishes its request: exit 0 after the grace period', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const server = await spawnServer({ HERALD_DATA_DIR: dir, HERALD_SHUTDOWN_GRACE_MS: '1000' });
  t.teardown(() => server.stop('SIGKILL'));
  const ok = await publishTo(server.url, { user: 'cy', title: 'before the stop' });
  t.equal(ok.status, 201);
  const stuck = await heldPublish(server.url, { user: 'cy', title: 'never finished' });
  t.teardown(() => stuck.destroy());
  await new Promise((r) => setTimeout(r, 200));

  const signalledAt = Date.now();
  const exit = await server.stop('SIGINT');
  const tookMs = Date.now() - signalledAt;
  t.same(exit, { code: 0, signal: null }, 'exit code 0');
  t.ok(tookMs >= 900, `it waited for the grace period (${tookMs} ms)`);
  t.ok(tookMs < 8_000, `then stopped anyway (${tookMs} ms)`);
  await stuck.closed;
  t.pass('the stalled connection was closed');
  t.notOk(existsSync(join(dir, 'herald.db-wal')), 'the database was still closed cleanly');
  t.match(server.output(), /grace/i, 'the forced close is logged');

  const again = await spawnServer({ HERALD_DATA_DIR: dir });
  t.teardown(() => again.stop('SIGKILL'));
  t.same(await historyIds(again.url, 'cy'), [ok.body.id], 'what was acknowledged is there; the unfinished request is not');
});
