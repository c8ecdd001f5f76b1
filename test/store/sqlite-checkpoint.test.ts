// The SQLite store's write-ahead log is copied into the database file by a worker thread, a little at
// a time, rather than 4 MB at once inside a commit on the event loop; and the log still stays bounded
// under writes that never pause.
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { SqliteStore } from '../../src/store/sqlite.js';
import { sleep, tempDir } from '../../support/util.js';
import { waitUntil } from '../support/wait.js';

const size = (file: string) => statSync(file).size;

/** A store on a fresh file, closed and removed when the test ends. */
async function openStore(t: Pick<Test, 'teardown'>, sync: 'full' | 'normal'): Promise<{ file: string; store: SqliteStore }> {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'herald.db');
  const store = await SqliteStore.open(file, sync);
  t.teardown(() => store.close());
  return { file, store };
}

t.test('committed rows reach the database file without any commit checkpointing', async (t) => {
  const { file, store } = await openStore(t, 'full');
  const empty = size(file);
  // About 1 MB: far below the 1,000 pages (4 MB) past which a commit would checkpoint by itself.
  await Promise.all(Array.from({ length: 250 }, (_, i) => store.insert({ title: `n${i}`, body: 'x'.repeat(4000), target: { broadcast: true } })));
  t.ok(size(`${file}-wal`) < 4_000_000, 'the log is below the threshold of a commit checkpoint');
  await waitUntil('the rows in the database file', () => size(file) > empty + 900_000, 5000);
  t.pass(`the database file grew from ${empty} to ${size(file)} bytes`);
});

t.test('under writes that never pause, the log stays bounded and every row is kept', async (t) => {
  const { file, store } = await openStore(t, 'normal');
  let written = 0;
  let largestLog = 0;
  // About 24 MB through the log, 64 publishes in flight at all times, for as long as that takes.
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (written < 6000) {
        written++;
        await store.insert({ title: 'n', body: 'y'.repeat(4000), target: { broadcast: true } });
        largestLog = Math.max(largestLog, size(`${file}-wal`));
      }
    }),
  );
  await sleep(300);
  t.ok(largestLog < 8_000_000, `the log never passed 8 MB (largest ${largestLog} bytes)`);
  t.equal(await store.lastId(), 6000, 'every row is there');
});
