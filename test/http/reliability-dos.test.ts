// Denial of service: what one client can make the server hold or do is bounded (time, connections,
// resumes, bytes), and each refusal is the usual JSON error, readable by the client that caused it.
import t from 'tap';
import { clientKey } from '../../src/http/connections.js';
import type { Store } from '../../src/store/store.js';
import { sleep } from '../../support/util.js';
import { rawConnection, rawGet, type Json, type RawConnection } from '../support/http.js';
import { startServer } from '../support/server.js';
import { rawStream } from '../support/sse.js';
import { publisherKey, tokenFor } from '../support/tokens.js';
import { waitUntil } from '../support/wait.js';
import { wsConnect, wsRefusal, wsUrl } from '../support/ws.js';

const errorShape = (statusCode: number, error: string, message: RegExp) => ({ statusCode, error, message });

/** An HTTP/1.1 response as received on a raw connection: status, lower-cased headers, JSON body. */
function parseResponse(text: string): { status: number; headers: Record<string, string>; body: Json } {
  const [head = '', body = ''] = text.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine.split(' ')[1]), headers, body: body ? JSON.parse(body) : undefined };
}

/** Ms until `conn` is closed by the server, or Infinity if it is still open after `ms`. */
async function closedWithin(conn: RawConnection, since: number, ms: number): Promise<number> {
  return Promise.race([conn.closed.then(() => Date.now() - since), sleep(ms).then(() => Infinity)]);
}

t.test('request timeout: a trickled request is cut within about HERALD_REQUEST_TIMEOUT_MS; streams stay open', async (t) => {
  const s = await startServer({ env: { HERALD_REQUEST_TIMEOUT_MS: '1000' } });
  t.teardown(() => s.close());
  const stream = await rawStream(s.url, 'patient');
  const ws = await wsConnect(s, 'patient');
  t.teardown(() => (stream.socket.destroy(), ws.close()));
  await ws.command('ping'); // starts it live

  const started = Date.now();
  const trickle = await rawConnection(s.url);
  trickle.socket.write(
    `POST /notifications HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${publisherKey}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{`,
  );
  const drip = setInterval(() => trickle.socket.write(' '), 100);
  const silent = await rawConnection(s.url);
  t.teardown(() => (clearInterval(drip), trickle.socket.destroy(), silent.socket.destroy()));
  const [trickleMs, silentMs] = await Promise.all([closedWithin(trickle, started, 5000), closedWithin(silent, started, 5000)]);
  t.ok(trickleMs >= 900 && trickleMs < 2500, `the trickled body is cut after about 1 s (${trickleMs} ms)`);
  t.ok(silentMs >= 900 && silentMs < 2500, `a connection that never sends its request is cut too (${silentMs} ms)`);
  t.match(parseResponse(trickle.text()), { status: 408, body: errorShape(408, 'Request Timeout', /./) }, 'with a 408 saying why');

  await sleep(Math.max(0, 1500 - (Date.now() - started)));
  const published = await s.publish({ user: 'patient', title: 'after the timeout' });
  t.equal(published.status, 201);
  await waitUntil('the stream to get it', () => stream.text().includes('after the timeout'));
  await ws.waitFor((frames) => frames.some((f) => f.data?.title === 'after the timeout'));
  t.notOk(stream.socket.destroyed, 'the SSE stream outlived the request timeout');
  t.equal(ws.ws.readyState, ws.ws.OPEN, 'so did the WebSocket');
});

t.test('publisher credentials are checked before the body is read', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const cases: [string, string | undefined, number][] = [
    ['no credential', undefined, 401],
    ['a wrong key', 'Bearer not-the-publisher-key', 401],
    ['a subscriber token', `Bearer ${tokenFor('u')}`, 403],
  ];
  for (const [name, auth, status] of cases) {
    const c = await rawConnection(s.url);
    t.teardown(() => c.socket.destroy());
    // Ten megabytes announced and none sent: the answer must not wait for them.
    c.socket.write(
      `POST /notifications HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n${auth ? `authorization: ${auth}\r\n` : ''}\r\n`,
    );
    await waitUntil(`the answer to ${name}`, () => /\r\n\r\n\{.*\}$/s.test(c.text()), 2000);
    t.match(parseResponse(c.text()), { status, body: { statusCode: status } }, `${name}: ${status} before any of the body`);
  }
  const big = await fetch(`${s.url}/notifications`, {
    method: 'POST',
    headers: { authorization: 'Bearer not-the-publisher-key', 'content-type': 'application/json' },
    body: Buffer.alloc(5 * 1024 * 1024, 'x'),
  });
  t.equal(big.status, 401, 'fetch sending 5 MB without a valid key reads its 401');
  t.match(await big.json(), errorShape(401, 'Unauthorized', /invalid or expired/));
  t.equal(await s.store.lastId(), 0, 'nothing was stored');
});

t.test('an oversized body gets a 413 the client can read, not a reset', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const fiveMiB = 5 * 1024 * 1024;
  const post = (body: BodyInit) =>
    fetch(`${s.url}/notifications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${publisherKey}`, 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit);
  /**
   * 5 MB streamed in 256 KiB pieces, as an upload is: no content-length, so the server refuses it part
   * way through, while the client is still writing (a connection closed then resets the next write).
   */
  const streamed = () => {
    const piece = 256 * 1024;
    let sent = 0;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent >= fiveMiB) return controller.close();
        sent += piece;
        await sleep(1);
        controller.enqueue(new Uint8Array(piece).fill(0x20));
      },
    });
  };
  for (let i = 0; i < 3; i++) {
    const res = await post(streamed());
    t.equal(res.status, 413, `streamed 5 MB, try ${i + 1}: 413`);
    t.match(await res.json(), errorShape(413, 'Payload Too Large', /too large/));
  }
  const whole = await post(Buffer.alloc(fiveMiB, 0x20));
  t.equal(whole.status, 413, '5 MB with a content-length: 413 too');
  t.match(await whole.json(), errorShape(413, 'Payload Too Large', /too large/));
  t.equal((await s.publish({ user: 'a', title: 'fine' })).status, 201, 'the server keeps working');
});

t.test('connection caps: 429 past HERALD_MAX_CONNECTIONS_PER_IP, 503 past HERALD_MAX_CONNECTIONS, then room again', async (t) => {
  const s = await startServer({ env: { HERALD_MAX_CONNECTIONS: '4', HERALD_MAX_CONNECTIONS_PER_IP: '2' } });
  t.teardown(() => s.close());
  const held: RawConnection[] = [];
  t.teardown(() => held.forEach((c) => c.socket.destroy()));
  const hold = async (from: string) => {
    const c = await rawConnection(s.url, from);
    held.push(c);
    return c;
  };
  /** GET /health on a fresh connection from `from`: the whole answer, once the server closed it or 1 s passed. */
  const health = async (from: string) => {
    const c = await rawConnection(s.url, from);
    c.socket.write('GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    await Promise.race([c.closed, sleep(1000)]);
    c.socket.destroy();
    return parseResponse(c.text());
  };

  // From 127.0.0.2: an SSE stream (taken out of node:http once open, still counted) and an idle socket.
  const stream = await hold('127.0.0.2');
  stream.socket.write(`GET /events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${tokenFor('capped')}\r\n\r\n`);
  await waitUntil('the stream to open', () => stream.text().includes('retry:'));
  await hold('127.0.0.2');
  const perIp = await health('127.0.0.2');
  t.match(perIp, { status: 429, headers: { connection: 'close' } }, 'a third connection from one address: 429');
  t.match(perIp.body, errorShape(429, 'Too Many Requests', /at most 2 open connections per client address/));
  t.equal((await health('127.0.0.3')).status, 200, 'another address is not affected');

  await hold('127.0.0.3');
  await hold('127.0.0.3');
  const total = await health('127.0.0.4');
  t.match(total, { status: 503, headers: { connection: 'close' } }, 'a fifth connection in all: 503');
  t.match(total.body, errorShape(503, 'Service Unavailable', /connection limit/));

  stream.socket.destroy();
  await waitUntil('room for 127.0.0.2 again', async () => (await health('127.0.0.2')).status === 200, 5000);
  t.pass('a closed stream frees its place');
  held[3]!.socket.destroy();
  await waitUntil('room for a fifth connection', async () => (await health('127.0.0.4')).status === 200, 5000);
  t.pass('a closed connection frees its place in the total');
});

t.test('resume rate per user: 429 with Retry-After, over SSE and WebSocket; plain opens are not counted', async (t) => {
  const s = await startServer({ env: { HERALD_RESUME_RATE_PER_USER: '3', HERALD_RESUME_RATE_PER_IP: '0' } });
  t.teardown(() => s.close());
  const auth = { authorization: `Bearer ${tokenFor('churn')}` };
  t.equal((await rawGet(`${s.url}/events`, { ...auth, 'last-event-id': '0' }, 300)).status, 200, 'resume 1 (header)');
  t.equal((await rawGet(`${s.url}/events?lastEventId=0`, auth, 300)).status, 200, 'resume 2 (query)');
  const ws = await wsConnect(s, 'churn', '?lastEventId=0');
  ws.close();
  t.pass('resume 3 (WebSocket query)');

  const over = await rawGet(`${s.url}/events`, { ...auth, 'last-event-id': '0' }, 300);
  t.equal(over.status, 429, 'resume 4 in a minute: 429');
  t.match(JSON.parse(over.text), errorShape(429, 'Too Many Requests', /too many resumed streams \(Last-Event-ID\): at most 3 a minute per user; retry in \d+ s/));
  const retryAfter = Number(over.headers['retry-after']);
  t.ok(retryAfter >= 1 && retryAfter <= 20, `Retry-After says when a resume is allowed again (${retryAfter} s; one per 20 s)`);
  t.match(await wsRefusal(wsUrl(s, '?lastEventId=0'), auth), { status: 429, body: { statusCode: 429 } }, 'a WebSocket resume in the URL: 429 before the upgrade');

  const live = await wsConnect(s, 'churn');
  const reply = await live.command('resume', { lastEventId: 0 });
  t.match(reply, { event: 'error', data: errorShape(429, 'Too Many Requests', /at most 3 a minute per user/) }, 'a resume command: an error reply');
  t.match(await live.closed, { code: 1013, reason: /retry in \d+ s/ }, 'then the socket closes with 1013 (try again later), not a silent live start');

  t.equal((await rawGet(`${s.url}/events`, auth, 300)).status, 200, 'a stream without a resume point is not limited');
  t.equal((await rawGet(`${s.url}/events`, { authorization: `Bearer ${tokenFor('calm')}`, 'last-event-id': '0' }, 300)).status, 200, 'another user has its own allowance');
});

t.test('resume rate per client address: HERALD_RESUME_RATE_PER_IP', async (t) => {
  const s = await startServer({ env: { HERALD_RESUME_RATE_PER_USER: '0', HERALD_RESUME_RATE_PER_IP: '2' } });
  t.teardown(() => s.close());
  const resume = (user: string) => rawGet(`${s.url}/events`, { authorization: `Bearer ${tokenFor(user)}`, 'last-event-id': '0' }, 300);
  t.equal((await resume('a')).status, 200);
  t.equal((await resume('b')).status, 200);
  const over = await resume('c');
  t.equal(over.status, 429, 'a third user from the same address: 429');
  t.match(JSON.parse(over.text), errorShape(429, 'Too Many Requests', /at most 2 a minute per client address/));
  t.ok(Number(over.headers['retry-after']) >= 1);
});

/** Records the store reads a catch-up makes, by name, from now on. */
function recordReads(store: Store): string[] {
  const reads: string[] = [];
  for (const name of ['lastId', 'since', 'prunedUpTo', 'catchUp', 'range', 'replayStates'] as const) {
    const read = store[name].bind(store) as (...args: unknown[]) => Promise<unknown>;
    Object.assign(store, { [name]: (...args: unknown[]) => (reads.push(name), read(...args)) });
  }
  return reads;
}

t.test('a resume costs one store call per replay page, whether it missed nothing or some', async (t) => {
  for (const ring of ['0', '10000']) {
    const s = await startServer({ env: { HERALD_REPLAY_RING: ring } });
    t.teardown(() => s.close());
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) ids.push((await s.publish({ user: 'r', title: `n${i}` })).body.id);
    const reads = recordReads(s.store);
    const auth = { authorization: `Bearer ${tokenFor('r')}` };
    // Without the ring: the head, the page and the pruned horizon in one snapshot. With it: the
    // notifications come from memory, and only the user's deletions and horizon from the store.
    const expected = ring === '0' ? ['catchUp'] : ['replayStates'];

    const upToDate = await rawGet(`${s.url}/events`, { ...auth, 'last-event-id': String(ids[2]) }, 300);
    t.equal(upToDate.status, 200);
    t.same(reads, expected, `ring ${ring}: up to date: one call`);

    reads.length = 0;
    const behind = await rawGet(`${s.url}/events`, { ...auth, 'last-event-id': String(ids[0]) }, 300);
    t.match(behind.text, new RegExp(`id: ${ids[1]}[^]*id: ${ids[2]}`), 'the missed ones are replayed');
    t.same(reads, expected, `ring ${ring}: behind, within one page: one call`);
  }
});

t.test('limits count an IPv4 address, or the /64 of an IPv6 address', async (t) => {
  t.equal(clientKey('203.0.113.7'), '203.0.113.7');
  t.equal(clientKey('::ffff:203.0.113.7'), '203.0.113.7', 'IPv4 on a dual-stack socket');
  t.equal(clientKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  t.equal(clientKey('2001:0DB8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64', 'one /64, however written');
  t.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64');
  t.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  t.equal(clientKey('::1'), '0:0:0:0::/64');
  t.not(clientKey('2001:db8:1:3::1'), clientKey('2001:db8:1:2::1'), 'another /64 is another client');
});
