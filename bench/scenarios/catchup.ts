// Catch-up: a client reconnects with Last-Event-ID far behind; the time until it has every event missed.
import type { Msg } from '../lib.js';
import { ClientPool, publish } from '../load.js';
import type { Options } from '../options.js';
import { log, type Row, type Section } from '../report.js';
import { startHerald, withServer } from '../servers.js';

/** A client `behind` events behind reconnects with Last-Event-ID: time until it has them all. */
export async function catchup(o: Options): Promise<Section> {
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
  const behind = o.catchup;
  await withServer(
    () => startHerald(o),
    async (s) => {
      const pub = await publish(s, { rate: 0, durationMs: 120_000, connections: 32, total: behind + 100, keepIds: true });
      const head = Math.max(...pub.ids);
      const pool = new ClientPool(o, s, 1, 1);
      try {
        const times: number[] = [];
        let received = 0;
        for (let i = 0; i < 5; i++) {
          const r = await pool.workers[0]!.call<Msg & { ms: number; received: number }>({ op: 'catchup', user: `c${i}`, lastEventId: head - behind, expect: behind });
          times.push(r.ms);
          received = r.received;
        }
        times.sort((a, b) => a - b);
        raw.catchup = { behind, times, received };
        log(`catch-up: ${times.map((t) => t.toFixed(1)).join(', ')} ms; received ${received}`);
        rows.push(
          {
            scenario: `Catch-up: reconnect ${behind.toLocaleString('en-US')} events behind (5 runs)`,
            metric: 'time until live, median',
            herald: times[2]!,
            peer: null,
            unit: 'ms',
            target: '< 250 ms',
            met: times[2]! < 250 && received === behind,
          },
          { scenario: '', metric: 'slowest of 5', herald: times[4]!, peer: null, unit: 'ms' },
          { scenario: '', metric: 'events replayed', herald: received, peer: null, unit: '' },
        );
      } finally {
        await pool.stop();
      }
    },
  );
  return { rows, raw };
}
