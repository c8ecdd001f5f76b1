// A load process holding storm streams (storm-load.ts), driven over IPC by scenarios/storm.ts.
import { serve } from './lib.js';
import { StormStreams } from './storm-load.js';

const opts = JSON.parse(process.argv[2]!) as { port: number; secret: string; retryMs: number };
const streams = new StormStreams(opts.port, opts.secret, opts.retryMs);

serve(async (msg) => {
  switch (msg.op) {
    case 'open':
      await streams.open(String(msg.prefix), Number(msg.count), Number(msg.wsEvery));
      return { op: 'open', ...streams.stats() };
    case 'watch':
      streams.watchFor(Number(msg.id));
      return { op: 'watch' };
    case 'stats':
      return { op: 'stats', ...streams.stats() };
    case 'stop':
      streams.stop();
      return { op: 'stop' };
    default:
      throw new Error(`unknown op ${msg.op}`);
  }
});
