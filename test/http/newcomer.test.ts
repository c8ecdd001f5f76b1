// What a newcomer meets first: `npm start` up at once from the build `npm ci` made, readable logs
// at a terminal and JSON elsewhere, and the browser client's files served with the right types.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { projectFile } from '../../src/paths.js';
import { startNodeArgs, tempDir } from '../../support/util.js';
import { startServer, spawnServer } from '../support/server.js';

t.test('.d.ts files are TypeScript; the client files come from packages/client/dist, else 404', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const types = await fetch(`${s.url}/herald-client.d.ts`);
  t.equal(types.status, 200);
  t.equal(types.headers.get('content-type'), 'application/typescript; charset=utf-8', 'not video/mp2t');
  const dist = projectFile('packages', 'client', 'dist');
  const file = `${dist}/herald-inbox.js`;
  // A checkout whose client package is built already: its file is what is served (and left alone).
  const built = existsSync(file);
  if (!built) {
    t.equal((await fetch(`${s.url}/herald-inbox.js`)).status, 404, 'not built: 404');
    // A build appearing while Herald runs is served at once.
    mkdirSync(dist, { recursive: true });
    writeFileSync(file, 'export const built = true;\n');
    t.teardown(() => rmSync(file, { force: true }));
  }
  const inbox = await fetch(`${s.url}/herald-inbox.js`);
  t.equal(inbox.status, 200);
  t.match(inbox.headers.get('content-type'), /^(text|application)\/javascript/);
  t.equal(await inbox.text(), readFileSync(file, 'utf8'));
});

t.test('logs: JSON when stdout is not a terminal, pino-pretty lines with HERALD_LOG_FORMAT=pretty', async (t) => {
  const dataDir = tempDir();
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const json = await spawnServer({ HERALD_DATA_DIR: dataDir, LOG_LEVEL: 'info' });
  await fetch(`${json.url}/health`);
  await json.stop();
  t.match(json.output(), /^\{"level":30,.*"msg":"Server listening at/m, 'JSON lines by default (a pipe)');

  const pretty = await spawnServer({ HERALD_DATA_DIR: dataDir, LOG_LEVEL: 'info', HERALD_LOG_FORMAT: 'pretty' });
  await fetch(`${pretty.url}/health`);
  await pretty.stop();
  t.notMatch(pretty.output(), /\{"level"/, 'no JSON');
  t.match(pretty.output(), /\[\d\d:\d\d:\d\d\.\d{3}\] .*INFO.*: Server listening at/, 'a time, the level, the message');
  const bad = await spawnServer({ HERALD_DATA_DIR: dataDir, HERALD_LOG_FORMAT: 'xml' }).catch((e: Error) => e.message);
  t.match(bad, 'HERALD_LOG_FORMAT must be "pretty" or "json", got "xml"');
});

t.test('the built server is up in about a second (npm start runs it without building)', async (t) => {
  const dataDir = tempDir();
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const started = Date.now();
  const child = await spawnServer({ HERALD_DATA_DIR: dataDir });
  const ms = Date.now() - started;
  await child.stop();
  // Generous for a shared, loaded machine; a build on start took about a minute.
  t.ok(ms < 5000, `listening after ${ms} ms`);
});

t.test('npm start gives V8 one helper thread, and the built server run by the tests gets the same options', async (t) => {
  // Two cores shared by the event loop, the SQLite writer and V8's helpers: four helpers (the default)
  // lengthened the 1,000-stream latency run's p99 (README, Operations).
  t.same(startNodeArgs(), ['--v8-pool-size=1'], "package.json's start script");
  const dataDir = tempDir();
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const child = await spawnServer({ HERALD_DATA_DIR: dataDir });
  t.teardown(() => child.stop());
  const argv = readFileSync(`/proc/${child.proc.pid}/cmdline`, 'utf8').split('\0');
  t.ok(argv.includes('--v8-pool-size=1'), `the server's command line: ${argv.join(' ')}`);
});
