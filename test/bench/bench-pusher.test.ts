// The bench's Pusher scenario at tiny sizes: fan-out and idle sockets over the Pusher protocol,
// against the Socket.IO peer, end to end (the built bench, as bench-smoke.test.ts runs it).
import t from 'tap';
import { runBench } from '../support/bench.js';

t.test('npm run bench -- --only pusher: every channel event reaches every socket; idle sockets measured', async (t) => {
  const args = ['--only', 'pusher', '--sizes', '20', '--offered', '1000', '--seconds', '1', '--warmup', '0.5', '--idle', '30', '--settle-ms', '200', '--clients', '1'];
  const { code, stdout, stderr, result } = await runBench(args, 100_000);
  t.equal(code, 0, `the bench exits cleanly\n${stderr}`);
  t.match(stdout, /\| Pusher protocol fan-out: 20 sockets on one channel/, 'a fan-out row');
  t.match(stdout, /\| Pusher protocol idle: 30 sockets, one channel each/, 'an idle row');
  for (const name of ['herald', 'peer']) {
    const fan = result.raw.pusherFanout20[name];
    t.equal(fan.opened, 20, `${name}: sockets opened`);
    t.ok(fan.received > 0, `${name}: events received`);
    t.equal(fan.received, fan.expected, `${name}: every event reached every socket`);
    t.equal(result.raw.pusherIdle[name].opened, 30, `${name}: idle sockets opened`);
  }
});
