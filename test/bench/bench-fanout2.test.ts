// The bench's fanout2 scenario at tiny sizes: real PostgreSQL and Redis, two Herald instances with the
// streams split across them and every broadcast published to one, then one instance for comparison.
// Every stream on both instances must get every broadcast exactly once. Like bench-smoke.test.ts, it
// proves the bench works, not that Herald is fast. Needs redis-server and PostgreSQL (.ci/run
// installs them); without them the bench prints a skip row, which fails here.
import t from 'tap';
import { runBench } from '../support/bench.js';

t.test('npm run bench -- --only fanout2 at tiny sizes: all delivered on both instances', async (t) => {
  const args = ['--only', 'fanout2', '--no-peer', '--fanout2-streams', '50', '--fanout2-rate', '20', '--seconds', '1', '--clients', '2'];
  const { code, stdout, stderr, result } = await runBench(args, 50_000);
  t.equal(code, 0, `the bench exits cleanly\n${stderr}`);
  t.equal(result?.table, stdout.trim(), 'the JSON file carries the printed table');
  t.match(stdout, /^\| Fan-out on 2 instances \(PostgreSQL \+ Redis\): 50 streams .*\| delivered events\/s, 2 instances \|/m, 'a fanout2 row');
  const f = result?.raw?.fanout2;
  t.notOk(f?.skipped, `not skipped: ${f?.skipped}`);
  t.equal(f?.twoInstances?.instances?.length, 2, 'two instances measured');

  for (const [name, run, instances] of [['two instances', f?.twoInstances, 2], ['one instance', f?.oneInstance, 1]] as const) {
    t.equal(run?.opened, 50, `${name}: every stream opened`);
    t.equal(run?.published, 20, `${name}: every broadcast answered`);
    t.equal(run?.instances?.length, instances);
    for (const [i, x] of (run?.instances ?? []).entries()) {
      t.equal(x.opened, 50 / instances, `${name}, instance ${i}: its share of the streams`);
      t.equal(x.expected, 20 * x.opened, `${name}, instance ${i}: expected every broadcast on every stream`);
      t.equal(x.received, x.expected, `${name}, instance ${i}: delivered / expected is 100%`);
    }
    t.ok(run?.deliveredPerSec > 0, `${name}: delivery rate measured`);
    t.ok(run?.p99 >= run?.p50 && run?.max >= run?.p99, `${name}: percentiles in order`);
  }
  t.ok(f?.ratio > 0, 'the two-instance / one-instance ratio');
  t.match(stdout, /delivered \/ expected, 2 instances: published to \/ other \| 100\.0 % \/ 100\.0 % \|.*\| yes \|/, 'the table says all were delivered on each');
});
