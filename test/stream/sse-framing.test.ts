// Property tests of the SSE framing: whatever a publisher puts in a notification, a real SSE parser
// (eventsource-parser, the one inside the `eventsource` client) reads back exactly one event with the
// right id and the payload intact; no payload can end an event early or forge an id or event name.
import { deepStrictEqual, equal, throws } from 'node:assert/strict';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import fc from 'fast-check';
import t from 'tap';
import { OutEvent } from '../../src/stream/out-event.js';
import { isWellFormed } from '../../src/http/json-body.js';
import { sseEvent, sseFrame } from '../../src/stream/sse.js';
import { publicView, type StoredNotification } from '../../src/types.js';
import { startServer } from '../support/server.js';
import { connect } from '../support/sse.js';

/** Pieces that attack SSE framing, mixed with any code point and any UTF-16 code unit (lone surrogates too). */
const hostilePiece = fc.oneof(
  fc.constantFrom('\r', '\n', '\r\n', '\n\n', '\r\r', 'id: 7', 'id:', 'event: reload', 'data: ', 'retry: 1', ':', ' ', '\u0000'),
  fc.constantFrom('\u2028', '\u2029', '\u0085', '\ufeff', '\u202e', '😀', '👩‍👩‍👧', '"', '\\', '}'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
);
const hostileString = fc.string({ unit: hostilePiece, maxLength: 30 });
/** The same without lone surrogates: what a UTF-8 stream can carry verbatim. */
const wellFormedString = hostileString.filter(isWellFormed);

const notification = fc.record({
  id: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  title: hostileString,
  body: fc.option(hostileString),
  type: fc.option(hostileString),
  topic: fc.option(fc.stringMatching(/^[A-Za-z0-9_.:/@-]{1,20}$/)),
  data: fc.option(fc.dictionary(hostileString, fc.oneof(hostileString, fc.array(hostileString, { maxLength: 3 })), { maxKeys: 4, noNullPrototype: true })),
  url: fc.option(hostileString),
  icon: fc.option(hostileString),
  actor: fc.option(fc.record({ name: hostileString, avatar: hostileString }, { requiredKeys: ['name'], noNullPrototype: true })),
  actions: fc.option(fc.array(fc.record({ label: hostileString, url: hostileString }, { noNullPrototype: true }), { maxLength: 3 })),
  critical: fc.boolean(),
});

function stored(n: Omit<StoredNotification, 'broadcast' | 'createdAt' | 'users'>): StoredNotification {
  return { ...n, broadcast: false, createdAt: new Date(0).toISOString(), users: ['u'] };
}

/**
 * Reads SSE bytes the way a client does: UTF-8 decoded as chunks arrive, the chunks cut at arbitrary
 * byte offsets (inside a multi-byte character, between CR and LF...).
 */
function parse(text: string, cuts: number[]): EventSourceMessage[] {
  const bytes = new TextEncoder().encode(text);
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (e) => events.push(e) });
  const decoder = new TextDecoder();
  let from = 0;
  for (const cut of [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)) {
    parser.feed(decoder.decode(bytes.subarray(from, cut), { stream: true }));
    from = cut;
  }
  parser.feed(decoder.decode(bytes.subarray(from)));
  return events;
}

const cuts = fc.array(fc.nat(), { maxLength: 12 });

t.test('any notification is exactly one event, with its id, and its payload intact', async (t) => {
  fc.assert(
    fc.property(notification, cuts, (n, at) => {
      const s = stored(n);
      const events = parse(sseFrame(OutEvent.notification(s)), at);
      equal(events.length, 1);
      equal(events[0]!.id, String(n.id));
      equal(events[0]!.event, 'notification');
      deepStrictEqual(JSON.parse(events[0]!.data), publicView(s));
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 notifications round-tripped');
});

t.test('a stream of notifications and state events parses back to the same sequence', async (t) => {
  const item = fc.oneof(
    notification.map((n) => OutEvent.notification(stored(n))),
    fc.array(fc.nat(), { minLength: 1, maxLength: 3 }).map((ids) => OutEvent.user({ kind: 'read', user: 'u', ids })),
    fc.nat().map((id) => OutEvent.user({ kind: 'deleted', user: 'u', id })),
  );
  fc.assert(
    fc.property(fc.array(item, { minLength: 1, maxLength: 8 }), cuts, (evs, at) => {
      const events = parse(evs.map(sseFrame).join(''), at);
      deepStrictEqual(
        events.map((e) => [e.event, e.id, JSON.parse(e.data) as unknown]),
        evs.map((e) => [e.event, e.id === undefined ? undefined : String(e.id), JSON.parse(e.json) as unknown]),
      );
    }),
    { numRuns: 500 },
  );
  t.pass('500 streams round-tripped');
});

t.test('raw framing: any well-formed data is one event; only its line breaks are normalised to LF', async (t) => {
  fc.assert(
    fc.property(wellFormedString, fc.option(fc.nat()), cuts, (data, id, at) => {
      const events = parse(sseEvent('notification', data, id ?? undefined), at);
      equal(events.length, 1);
      equal(events[0]!.id, id === null ? undefined : String(id));
      equal(events[0]!.event, 'notification');
      // The spec's parser joins data lines with LF, so CR and CRLF come back as LF: the JSON layer
      // above never produces a raw line break, which is why notifications round-trip exactly.
      equal(events[0]!.data, data.replace(/\r\n|\r/g, '\n'));
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(hostileString, fc.constantFrom('\r', '\n', '\r\n'), hostileString, (a, br, b) => {
      throws(() => sseEvent(a + br + b, '{}'));
    }),
  );
  t.pass('raw framing holds');
});

t.test('through a running server: any payload is refused clearly or delivered intact, never corrupted', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const client = await connect(s, 'prop');
  t.teardown(() => client.close());
  const payload = fc.record({
    title: hostileString.filter((x) => x.length > 0),
    body: hostileString,
    data: fc.dictionary(hostileString, hostileString, { maxKeys: 3, noNullPrototype: true }),
  });
  let delivered = 0;
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(payload, async (p) => {
      const res = await s.publish({ user: 'prop', ...p });
      const wellFormed = [p.title, p.body, ...Object.keys(p.data), ...Object.values(p.data)].every(isWellFormed);
      if (!wellFormed) {
        equal(res.status, 400, 'a lone surrogate is refused');
        equal(typeof res.body.message, 'string');
        refused++;
        return;
      }
      equal(res.status, 201);
      await client.waitFor((e) => e.some((x) => x.id === String(res.body.id)), 10_000);
      const got = client.events.filter((x) => x.id === String(res.body.id));
      equal(got.length, 1, 'exactly one event with this id');
      deepStrictEqual([got[0]!.type, got[0]!.data.title, got[0]!.data.body, got[0]!.data.data], ['notification', p.title, p.body, p.data]);
      delivered++;
    }),
    { numRuns: 60 },
  );
  t.ok(delivered > 0 && refused > 0, `both outcomes exercised (${delivered} delivered, ${refused} refused)`);
  t.same(
    client.events.map((e) => e.type),
    client.events.map(() => 'notification'),
    'nothing but notification events arrived',
  );
});
