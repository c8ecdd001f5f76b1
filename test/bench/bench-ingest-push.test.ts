// The bench's ingest-push scenario at tiny sizes: publishes to users with nothing set and to users
// with preferences and two push subscriptions each, in alternating rounds on one Herald, and every
// push those publishes queued reaches the bench's loopback push service. Like bench-smoke.test.ts, it
// proves the bench works, not that Herald is fast.
import t from 'tap';
import { runBench } from '../support/bench.js';

t.test('npm run bench -- --only ingest-push at tiny sizes: both sides measured, every push delivered', async (t) => {
  const args = ['--only', 'ingest-push', '--no-peer', '--ingest-push-seconds', '1', '--ingest-push-rounds', '2', '--ingest-push-users', '5', '--ingest-connections', '4'];
  const { code, stdout, stderr, result } = await runBench(args, 60_000);
  t.equal(code, 0, `the bench exits cleanly\n${stderr}`);
  t.equal(result?.table, stdout.trim(), 'the JSON file carries the printed table');
  t.match(stdout, /^\| Ingest with Web Push: 2 rounds × 2 × 1 s, -c 4, 5 users each side \| durable notifications\/s, \(a\) users with nothing set \| [\d,]+ \/s \|/m, 'the (a) row');
  t.match(stdout, /^\| {2}\| \(b\) \/ \(a\) \| \d+\.\d\d× \|/m, 'the ratio row');
  const p = result?.raw?.ingestPush;
  t.equal(p?.a?.length, 2, 'two (a) rounds');
  t.equal(p?.b?.length, 2, 'two (b) rounds');
  for (const run of [...(p?.a ?? []), ...(p?.b ?? [])]) t.ok(run.ok > 0 && run.failed === 0, 'each round published, with no failure');
  t.equal(p?.failed, 0);
  t.ok(p?.aPerSec > 0 && p?.bPerSec > 0, 'both rates measured');
  t.equal(p?.ratio, p?.bPerSec / p?.aPerSec, 'the ratio is (b) / (a)');
  const published = p?.b?.reduce((x: number, r: { ok: number }) => x + r.ok, 0);
  t.equal(p?.pushesExpected, published * 2, 'two pushes queued per (b) publish');
  t.equal(p?.pushesDelivered, p?.pushesExpected, 'every one arrived at the push service');
  t.match(stdout, /\| pushes delivered \/ queued by \(b\) \| ([\d,]+) \/ \1 \|.*\| yes \|/, 'the table says all were delivered');
});
