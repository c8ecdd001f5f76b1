import { rmSync } from 'node:fs';
import t from 'tap';
import { redactUrl } from '../../src/http/auth.js';
import { tempDir } from '../../support/util.js';
import { rawGet } from '../support/http.js';
import { spawnServer } from '../support/server.js';
import { tokenFor } from '../support/tokens.js';

t.test('a ?token= credential never reaches the request log', async (t) => {
  const dataDir = tempDir();
  const child = await spawnServer({ HERALD_DATA_DIR: dataDir, LOG_LEVEL: 'info' });
  t.teardown(async () => {
    await child.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const token = tokenFor('lee', { topics: ['a'] });
  // The browser client authenticates its stream this way, so this is the URL every page load logs.
  const res = await rawGet(`${child.url}/events?topic=a&token=${token}&lastEventId=0`, {}, 300);
  t.equal(res.status, 200, 'the token in the query authenticates');
  await fetch(`${child.url}/notifications/unread-count?token=${token}`);
  await child.stop();
  t.notMatch(child.output(), token.split('.')[2]!, 'no part of the signature in the log');
  t.match(child.output(), '"url":"/events?topic=a&token=[redacted]&lastEventId=0"', 'the rest of the URL is kept');
});

t.test('a JWT anywhere in a URL never reaches the request log, whatever carries it', async (t) => {
  const dataDir = tempDir();
  const child = await spawnServer({ HERALD_DATA_DIR: dataDir, LOG_LEVEL: 'info' });
  t.teardown(async () => {
    await child.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const token = tokenFor('lee');
  const publishToken = tokenFor('svc', { scope: 'publish' });
  const paths = [
    `/notifications?limit=5&access_token=${token}`,
    `/events?topic=a&jwt=${token}`,
    `/notifications/unread-count?auth=Bearer%20${token}`,
    `/files/${token}/report.csv`,
    `/${publishToken}`,
    `/events?x=${token.replaceAll('.', '%2E')}`,
  ];
  for (const path of paths) {
    const res = await rawGet(child.url + path, {}, 300);
    t.ok(res.status >= 400 && res.status < 500, `${path.slice(0, 30)}: refused (${res.status})`);
  }
  await child.stop();
  const out = child.output();
  t.equal(out.match(/"msg":"incoming request"/g)?.length, paths.length, 'every request was logged');
  for (const signature of [token.split('.')[2]!, publishToken.split('.')[2]!]) t.notMatch(out, signature, 'no part of a signature in the log');
  t.notMatch(out, token.split('.')[1]!, 'nor of the claims');
  t.match(out, '"url":"/notifications?limit=5&access_token=[redacted]"', 'the rest of the URL is kept');
  t.match(out, '"url":"/files/[redacted]/report.csv"', 'a path segment is redacted');
  t.match(out, '"url":"/notifications/unread-count?auth=Bearer%20[redacted]"');
});

t.test('redactUrl', async (t) => {
  t.equal(redactUrl('/events?token=a.b.c'), '/events?token=[redacted]');
  t.equal(redactUrl('/x?TOKEN=abc&topic=t#f'), '/x?TOKEN=[redacted]&topic=t#f');
  t.equal(redactUrl('/x?mytoken=abc'), '/x?mytoken=abc', 'only the token parameter');
  t.equal(
    redactUrl('/apps/1/events?auth_key=k&auth_timestamp=1&auth_signature=abc123&body_md5=f'),
    '/apps/1/events?auth_key=k&auth_timestamp=1&auth_signature=[redacted]&body_md5=f',
    'a Pusher request signature too',
  );
  t.equal(redactUrl('/notifications'), '/notifications');
  t.equal(redactUrl('/x?%74oken=abc&t%6Fken=def'), '/x?%74oken=[redacted]&t%6Fken=[redacted]', 'keys compare decoded, as the parser reads them');
  t.equal(redactUrl('/x?a=1&token=abc&token=def'), '/x?a=1&token=[redacted]&token=[redacted]');
  t.equal(redactUrl('/x?id_token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsZWUifQ.c2ln&a=1'), '/x?id_token=[redacted]&a=1', 'a JWT under any name');
  t.equal(redactUrl('/a/eyJhbGciOiJub25lIn0.eyJzdWIiOiJsZWUifQ./b'), '/a/[redacted]/b', 'an unsigned one in a path segment');
  t.equal(redactUrl('/x?t=eyJhbGciOiJIUzI1NiJ9%2EeyJzdWIiOiJsZWUifQ%2ec2ln'), '/x?t=[redacted]', 'with percent-encoded dots');
  t.equal(redactUrl('/x?v=eyJ.only&n=1.2.3'), '/x?v=eyJ.only&n=1.2.3', 'not three parts, or not a JWT header: kept');
});
