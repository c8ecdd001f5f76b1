// The benchmark at tiny sizes: every scenario runs end to end against real Herald and peer processes
// and reports sane numbers. It proves the bench works, not that Herald is fast (see README, Performance).
// Runs the built bench (dist/bench), which `npm test` builds first.
import t from 'tap';
import { runBench } from '../support/bench.js';

t.test('npm run bench at tiny sizes: every scenario, a table, a JSON file', async (t) => {
  const args = [
    // fanout2 (two instances on PostgreSQL + Redis) has its own smoke test, bench-fanout2.test.ts.
    ...['--only', 'ingest,latency,fanout,idle,catchup'],
    ...['--sizes', '20', '--offered', '1000', '--seconds', '1', '--warmup', '0.5', '--idle', '30', '--settle-ms', '200'],
    ...['--latency-streams', '10', '--latency-rate', '50', '--ingest-seconds', '1', '--ingest-connections', '8'],
    ...['--catchup', '100', '--clients', '1', '--peer-spin-us', '2000'],
  ];
  const { code, stdout, stderr, result } = await runBench(args, 100_000);
  t.equal(code, 0, `the bench exits cleanly\n${stderr}`);

  t.match(stdout, /^\| Scenario \| Metric \| Herald \| Socket\.IO peer \| Herald\/peer \| Target \| Met \|/m, 'prints the table');
  t.equal(result.table, stdout.trim(), 'the JSON file carries the printed table');
  const raw = result.raw;

  t.ok(raw.ingest.requests.average > 0, 'ingest measured');
  // The measured run follows a warm-up of the same load on the same server, whose 201s are rows too.
  t.ok(raw.ingest.warmup['2xx'] > 0, 'ingest: a warm-up ran first');
  t.ok(raw.ingest.rowsOnDisk >= raw.ingest['2xx'] + raw.ingest.warmup['2xx'], 'every 201 is a committed row');
  t.ok(raw.crash.acked > 0, 'the crash check got answers before the kill');
  t.equal(raw.crash.missing, 0, 'no answered publish is missing after kill -9');

  for (const name of ['herald', 'peer']) {
    const lat = raw.latency[name];
    t.equal(lat.received, lat.expected, `${name}: every user notification delivered`);
    t.ok(lat.p99 >= lat.p50 && lat.max >= lat.p99, `${name}: percentiles in order`);
    // Its deliveries all arrived before the measured run began, so none is counted twice above.
    t.ok(lat.warmup.expected > 0, `${name}: a warm-up ran first`);
    t.equal(lat.warmup.received, lat.warmup.expected, `${name}: every warm-up notification delivered`);
    const fan = raw.fanout[0][name];
    t.equal(fan.opened, 20, `${name}: fan-out streams opened`);
    t.equal(fan.received, fan.expected, `${name}: every broadcast reached every stream`);
    t.ok(fan.deliveredPerSec > 0, `${name}: delivery rate measured`);
    t.equal(raw.idle[name].opened, 30, `${name}: idle streams opened`);
    t.ok(raw.idle[name].rssMiB > 0, `${name}: server memory read`);
  }
  // Herald again, its streams over its WebSocket instead of SSE.
  t.equal(raw.latency.heraldWs.received, raw.latency.heraldWs.expected, 'WebSocket: every user notification delivered');
  t.equal(raw.fanout[0].heraldWs.opened, 20, 'WebSocket: fan-out streams opened');
  t.equal(raw.fanout[0].heraldWs.received, raw.fanout[0].heraldWs.expected, 'WebSocket: every broadcast reached every stream');
  t.equal(raw.idle.heraldWs.opened, 30, 'WebSocket: idle streams opened');
  t.match(stdout, /Herald over its WebSocket: delivered events\/s/, 'the table has the WebSocket rows');
  // The server's event loop beside every measured run's latency: Herald's, read from its /metrics.
  const runs = { latency: raw.latency.herald, 'latency NORMAL': raw.latency.heraldSyncNormal, 'latency ws': raw.latency.heraldWs, fanout: raw.fanout[0].herald, 'fanout ws': raw.fanout[0].heraldWs };
  for (const [name, run] of Object.entries(runs) as [string, { loop: Record<string, number> }][]) {
    const l = run.loop;
    t.ok(l.delayP50 >= 0 && l.delayP99 >= l.delayP50 && l.delayMax >= l.delayP99, `${name}: event-loop delay percentiles in order`);
    t.ok(l.gcCount >= 0 && l.gcTotalMs >= 0 && (l.gcCount === 0 || l.gcMaxMs > 0), `${name}: GC pauses read`);
  }
  t.equal(raw.latency.peer.loop, null, 'the peer has no such figures');
  // The peer again, busy-waiting 2 ms on each publish: the spin shows in its CPU per event and its latency.
  const spun = raw.latency.peerSpun;
  t.equal(spun.spinUs, 2000);
  t.equal(spun.received, spun.expected, 'the spinning peer delivers every notification');
  t.ok(spun.loopCpuUsPerEvent >= 1500, `its event loop's CPU per event includes the spin (${spun.loopCpuUsPerEvent} µs)`);
  t.ok(raw.latency.herald.loopCpuUsPerEvent > 0, "Herald's event-loop CPU per event measured");
  t.ok(spun.p50 >= 1.9, `and so does every delivery (p50 ${spun.p50} ms)`);
  t.match(stdout, /\| the same, the peer busy-waiting 2000 µs per publish .*\| – \| [\d.]+ ms \/ [\d.]+ ms \/ [\d.]+ ms; \d+ µs \/ \d+ µs \|/, 'the table has its row');
  t.match(stdout, /\| the same, on the event loop's thread \| [\d.,]+ µs \| [\d.,]+ µs \|/, 'and the event-loop CPU of both');
  t.ok(raw.fanout[0].herald.writesPerEvent > 0 && raw.fanout[0].peer.writesPerEvent > 0, 'write syscalls per delivered event counted');
  t.match(stdout, /\| server write syscalls per delivered event \| \d\.\d{3} \| \d\.\d{3} \|/, 'and reported for both');
  t.match(stdout, /\| server event-loop delay p50 \/ p99 \/ max \| [\d.]+ ms \/ [\d.]+ ms \/ [\d.]+ ms \| – \|/, 'the table has the event-loop delay');
  t.match(stdout, /\| server GC pauses: total \(count\) \/ longest \| [\d.]+ ms \(\d+\) \/ ≤ /, 'the table has the GC pauses');
  t.match(stdout, /Herald over its WebSocket: server event-loop delay/, 'and the same for each transport');
  t.equal(raw.catchup.received, 100, 'catch-up replays exactly the events missed');
  t.equal(raw.catchup.times.length, 5);
});
