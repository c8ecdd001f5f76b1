import t from 'tap';
import { historyIds, rawGet } from '../support/http.js';
import { startServer, type Server } from '../support/server.js';
import { publisherKey, tokenFor } from '../support/tokens.js';

t.test('bad publish bodies get a clear 4xx and write nothing', async (t) => {
  const s = await startServer({ env: { HERALD_BODY_LIMIT: '2048' } });
  t.teardown(() => s.close());
  const post = (body: string, contentType = 'application/json') =>
    fetch(`${s.url}/notifications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${publisherKey}`, 'content-type': contentType },
      body,
    });
  const cases: [string, string, number, RegExp][] = [
    ['malformed JSON', '{"user":"a","title":', 400, /JSON/],
    ['not an object', '[1,2]', 400, /object/],
    ['unknown field', '{"user":"a","title":"t","colour":"red"}', 400, /unknown field "colour"/],
    ['no title', '{"user":"a"}', 400, /title/],
    ['empty title', '{"user":"a","title":""}', 400, /title/],
    ['title of the wrong type', '{"user":"a","title":5}', 400, /title/],
    ['no target', '{"title":"t"}', 400, /exactly one target/],
    ['two targets', '{"title":"t","user":"a","topic":"x"}', 400, /exactly one target/],
    ['broadcast false', '{"title":"t","broadcast":false}', 400, /broadcast/],
    ['empty users', '{"title":"t","users":[]}', 400, /users/],
    ['data not an object', '{"title":"t","user":"a","data":[1]}', 400, /data/],
    ['bad topic', '{"title":"t","topic":"a b\\n"}', 400, /topic/],
    ['control characters in a user id', '{"title":"t","user":"a\\u0000b"}', 400, /user/],
    ['oversize body', JSON.stringify({ user: 'a', title: 't', body: 'x'.repeat(4000) }), 413, /large|limit/i],
  ];
  for (const [name, body, status, message] of cases) {
    const r = await post(body);
    t.equal(r.status, status, name);
    const json = (await r.json()) as { statusCode: number; error: string; message: string };
    t.equal(json.statusCode, status, `${name}: statusCode in body`);
    t.type(json.error, 'string');
    t.match(json.message, message, `${name}: says what is wrong`);
  }
  const wrongType = await post('user=a&title=t', 'application/x-www-form-urlencoded');
  t.equal(wrongType.status, 415, 'form bodies are refused');
  t.equal(await s.store.lastId(), 0, 'nothing was written');
  t.equal((await s.publish({ user: 'a', title: 'still fine' })).status, 201, 'the server keeps working');
});

t.test('bad ids, cursors and Last-Event-IDs get a 400', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const tok = tokenFor('alice');
  for (const bad of ['abc', '-1', '1.5', '1e3', '99999999999999999999', '1 2']) {
    const h = await rawGet(`${s.url}/events`, { authorization: `Bearer ${tok}`, 'last-event-id': bad }, 300);
    t.equal(h.status, 400, `Last-Event-ID header ${JSON.stringify(bad)}`);
    t.match(JSON.parse(h.text), { statusCode: 400, message: /last-event-id/ });
    const q = await rawGet(`${s.url}/events?lastEventId=${encodeURIComponent(bad)}`, { authorization: `Bearer ${tok}` }, 300);
    t.equal(q.status, 400, `?lastEventId=${bad}`);
    const read = await s.request('POST', `/notifications/${encodeURIComponent(bad)}/read`, 'alice');
    t.equal(read.status, 400, `mark read of id ${bad}`);
    const page = await s.request('GET', `/notifications?before=${encodeURIComponent(bad)}`, 'alice');
    t.equal(page.status, 400, `cursor ${bad}`);
  }
  for (const q of ['limit=0', 'limit=201', 'limit=x', 'unread=maybe', 'topic=a%20b', 'nope=1']) {
    t.equal((await s.request('GET', `/notifications?${q}`, 'alice')).status, 400, `history ?${q}`);
  }
  const tooMany = Array.from({ length: 51 }, (_, i) => `topic=t${i}`).join('&');
  t.equal((await rawGet(`${s.url}/events?${tooMany}`, { authorization: `Bearer ${tok}` }, 300)).status, 400, 'too many topics');
  t.equal((await s.request('GET', '/nowhere', 'alice')).status, 404);
  t.match((await s.request('GET', '/nowhere', 'alice')).body, { statusCode: 404, error: 'Not Found' });
});

t.test('Idempotency-Key: a retry returns the first result, never a duplicate', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const body = { user: 'alice', title: 'Order shipped' };
  const first = await s.publish(body, { 'idempotency-key': 'order-1' });
  const retry = await s.publish(body, { 'idempotency-key': 'order-1' });
  t.equal(first.status, 201);
  t.equal(retry.status, 201);
  t.same(retry.body, first.body, 'the same notification, id and all');
  const other = await s.publish(body, { 'idempotency-key': 'order-2' });
  t.not(other.body.id, first.body.id, 'another key is another notification');
  const misuse = await s.publish({ ...body, title: 'Order cancelled' }, { 'idempotency-key': 'order-1' });
  t.equal(misuse.status, 422, 'the same key for a different request');
  const asJwt = await s.publish(body, { 'idempotency-key': 'order-1', authorization: `Bearer ${tokenFor('svc', { scope: 'publish' })}` });
  t.not(asJwt.body.id, first.body.id, 'keys are per publisher');

  // Concurrent retries (a client timing out and retrying while the first is in flight).
  const burst = await Promise.all(Array.from({ length: 20 }, () => s.publish({ user: 'bob', title: 'once' }, { 'idempotency-key': 'burst' })));
  t.same(new Set(burst.map((r) => r.body.id)).size, 1, 'one notification for the whole burst');
  const bobs = await s.request('GET', '/notifications', 'bob');
  t.equal(bobs.body.items.length, 1);
  t.equal((await s.request('GET', '/notifications', 'alice')).body.items.length, 3);
});

/** POST /notifications with a body sent as exactly this text. */
function postText(s: Server, text: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${s.url}/notifications`, {
    method: 'POST',
    headers: { authorization: `Bearer ${publisherKey}`, 'content-type': 'application/json', ...headers },
    body: text,
  });
}

t.test('duplicate keys, inexact numbers and prototype keys are a 400 naming the problem and where', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const cases: [string, string, RegExp][] = [
    ['a duplicate key', '{"user":"a","title":"t","title":"u"}', /^body has a duplicate key "title"$/],
    ['a duplicate key in data', '{"user":"a","title":"t","data":{"x":1,"y":2,"x":3}}', /^body has a duplicate key "x" in data$/],
    ['a duplicate key deep in data', '{"user":"a","title":"t","data":{"l":[{"k":1},{"k":1,"k":2}]}}', /^body has a duplicate key "k" in data\.l\[1\]$/],
    ['a duplicate key spelled with an escape', '{"user":"a","title":"t","data":{"a":1,"\\u0061":2}}', /^body has a duplicate key "a" in data$/],
    ['2^53 + 1', '{"user":"a","title":"t","data":{"n":9007199254740993}}', /^body has a number that JSON cannot carry exactly in data\.n: 9007199254740993 \(integers must be within ±9007199254740991/],
    ['-(2^53 + 1)', '{"user":"a","title":"t","data":{"n":[-9007199254740993]}}', /cannot carry exactly in data\.n\[0\]: -9007199254740993/],
    ['1e999', '{"user":"a","title":"t","data":{"n":1e999}}', /cannot carry exactly in data\.n: 1e999 \(it is beyond the largest number/],
    ['-1e999', '{"user":"a","title":"t","data":{"n":-1e999}}', /cannot carry exactly in data\.n: -1e999/],
    ['1e-999', '{"user":"a","title":"t","data":{"n":1e-999}}', /cannot carry exactly in data\.n: 1e-999 \(it is too small and would be read as 0\)/],
    ['a __proto__ key', '{"user":"a","title":"t","__proto__":{"admin":true}}', /^body has a "__proto__" key, which is not allowed$/],
    ['a __proto__ key in data', '{"user":"a","title":"t","data":{"a":{"__proto__":{"admin":true}}}}', /^body has a "__proto__" key, which is not allowed in data\.a$/],
    ['a __proto__ key spelled with an escape', '{"user":"a","title":"t","data":{"\\u005f_proto__":1}}', /"__proto__" key, which is not allowed in data$/],
    ['a constructor key', '{"user":"a","title":"t","constructor":1}', /^body has a "constructor" key, which is not allowed$/],
    ['a constructor key in data', '{"user":"a","title":"t","data":{"constructor":{"prototype":{"admin":true}}}}', /^body has a "constructor" key, which is not allowed in data$/],
  ];
  for (const [name, text, message] of cases) {
    const r = await postText(s, text);
    t.equal(r.status, 400, name);
    t.match(await r.json(), { statusCode: 400, error: 'Bad Request', message }, `${name}: says so`);
  }
  t.equal(await s.store.lastId(), 0, 'nothing was written');
  t.equal(({} as Record<string, unknown>).admin, undefined, 'no prototype was touched');

  // What is carried exactly passes: the same key in sibling objects, the safe integer bounds, fractions.
  const fine = '{"user":"a","title":"t","data":{"a":{"k":1},"b":[{"k":1},{"k":2}],"max":9007199254740991,"min":-9007199254740991,"f":0.1,"big":1e308,"tiny":5e-324,"zero":0e-999}}';
  const ok = await postText(s, fine);
  t.equal(ok.status, 201, 'a body with none of these is accepted');
  t.same(((await ok.json()) as { data: unknown }).data, JSON.parse(fine).data, 'and stored exactly');
});

t.test('Idempotency-Key: the same fields in another order are a replay, not a 422', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const key = { 'idempotency-key': 'order-7' };
  const first = await postText(s, '{"user":"alice","title":"Shipped","data":{"order":7,"box":{"w":2,"h":3},"items":["a","b"]}}', key);
  t.equal(first.status, 201);
  const { id } = (await first.json()) as { id: number };
  for (const [name, text] of [
    ['top-level fields reordered', '{"data":{"order":7,"box":{"w":2,"h":3},"items":["a","b"]},"title":"Shipped","user":"alice"}'],
    ['fields in data reordered', '{"user":"alice","title":"Shipped","data":{"items":["a","b"],"box":{"h":3,"w":2},"order":7}}'],
    ['whitespace and null for an absent field', '{ "user": "alice", "title": "Shipped", "body": null, "data": {"order":7,"box":{"w":2,"h":3},"items":["a","b"]} }'],
  ]) {
    const retry = await postText(s, text!, key);
    t.equal(retry.status, 201, `${name}: answered as the first`);
    t.equal(retry.headers.get('idempotent-replayed'), 'true', `${name}: a replay`);
    t.equal(((await retry.json()) as { id: number }).id, id, `${name}: the same notification`);
  }
  for (const [name, text] of [
    ['array order is meaning', '{"user":"alice","title":"Shipped","data":{"order":7,"box":{"w":2,"h":3},"items":["b","a"]}}'],
    ['another value in data', '{"user":"alice","title":"Shipped","data":{"order":7,"box":{"w":2,"h":4},"items":["a","b"]}}'],
  ]) {
    const other = await postText(s, text!, key);
    t.equal(other.status, 422, `${name}: a different request`);
  }
  t.same(await historyIds(s.url, 'alice'), [id], 'one notification');
});

t.test('null body, data and type (as history answers them) are accepted as absent', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const r = await s.publish({ user: 'alice', title: 'no body', body: null });
  t.equal(r.status, 201, 'body: null');
  t.match(r.body, { title: 'no body', body: null, data: null, type: null });
  // A client echoing a history item back: every field it got, nulls included.
  const [item] = (await s.request('GET', '/notifications', 'alice')).body.items;
  const echo = await s.publish({ user: 'bob', title: item.title, body: item.body, data: item.data, type: item.type });
  t.equal(echo.status, 201, 'a history item sent back as is');
  t.match((await s.request('GET', '/notifications', 'bob')).body.items[0], { title: 'no body', body: null, data: null, type: null }, 'history shows null');
  const typed = await s.publish({ user: 'bob', title: 'x', type: '' });
  t.equal(typed.status, 400, 'an empty type is still refused');
});
