// The core behaviour suites again, on the PostgreSQL store: same API, same guarantees (issue 6).
// Each suite runs as a nested tap run with HERALD_TEST_STORE=postgres (see storeUnderTest in test/support/server.ts).
import t from 'tap';
import { projectFile } from '../../src/paths.js';

t.setTimeout(600_000);
const suites = ['stream/delivery', 'stream/catchup', 'http/history', 'http/auth', 'http/input', 'stream/ws', 'http/fields', 'stream/unread', 'http/preferences'].map((name) => `test/${name}.test.ts`);

t.spawn(projectFile('node_modules', '.bin', 'tap'), ['--disable-coverage', '--reporter=tap', '--jobs=1', ...suites], {
  cwd: projectFile(),
  env: { ...process.env, HERALD_TEST_STORE: 'postgres' },
});
