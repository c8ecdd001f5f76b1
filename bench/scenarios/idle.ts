// Idle: N streams held open and nothing sent; the server's memory per stream and the time to open them.
import { sleep } from '../../support/util.js';
import { rssOf } from '../lib.js';
import { ClientPool } from '../load.js';
import type { Options } from '../options.js';
import { log, ratio, type Row, type Section } from '../report.js';
import { eachContender, withServer, type Contenders, type Server } from '../servers.js';

export interface IdleResult {
  streams: number;
  opened: number;
  acceptMs: number;
  baseMiB: number;
  halfMiB: number;
  rssMiB: number;
  /** RSS growth over the streams held: fixed costs of the burst (a grown young generation) included. */
  perStreamKiB: number;
  /** RSS growth from half to all the streams, per stream added: what one more stream costs. */
  marginalKiB: number;
}

/** Opens `n` idle streams in two halves, reading the server's RSS before, between and after. */
export async function idleOne(o: Options, server: Server, n: number): Promise<IdleResult> {
  await sleep(500);
  const base = rssOf(server.pid);
  const pool = new ClientPool(o, server, o.clients, n);
  try {
    const first = await pool.open('i', Math.floor(n / 2));
    await sleep(o.settleMs);
    const half = rssOf(server.pid);
    const second = await pool.open('j', n - Math.floor(n / 2));
    await sleep(o.settleMs);
    const rss = rssOf(server.pid);
    const failed = first.failed + second.failed;
    if (failed > 0) log(`${server.name}: ${failed} of ${n} idle streams failed: ${first.firstError || second.firstError}`);
    const opened = first.opened + second.opened;
    return {
      streams: n,
      opened,
      acceptMs: first.ms + second.ms,
      baseMiB: base / 1048576,
      halfMiB: half / 1048576,
      rssMiB: rss / 1048576,
      perStreamKiB: (rss - base) / 1024 / opened,
      marginalKiB: (rss - half) / 1024 / Math.max(1, second.opened),
    };
  } finally {
    await pool.stop();
  }
}

export async function idle(o: Options, c: Contenders): Promise<Section> {
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
  const r = await eachContender(c, 'idle', (start) => withServer(start, (s) => idleOne(o, s, o.idle)));
  raw.idle = r;
  const { herald: h, heraldWs: w, peer: p } = r;
  const mem = (x: IdleResult) => `${x.baseMiB.toFixed(0)} → ${x.halfMiB.toFixed(0)} → ${x.rssMiB.toFixed(0)} MiB`;
  rows.push(
    {
      scenario: `Idle: ${o.idle.toLocaleString('en-US')} streams held`,
      metric: 'server RSS per stream',
      herald: h.perStreamKiB,
      peer: p?.perStreamKiB ?? null,
      unit: 'KiB',
      ratio: ratio(h.perStreamKiB, p?.perStreamKiB ?? null),
      target: `< 10 KiB at 20,000${o.fdRoom < 20_000 ? ` (${o.fdRoom.toLocaleString('en-US')} under this fd limit)` : ''}, ≤ 0.5× peer`,
      met: h.perStreamKiB < 10 && h.opened >= Math.min(20_000, o.fdRoom) && (!p || h.perStreamKiB <= p.perStreamKiB / 2),
    },
    {
      scenario: '',
      metric: 'marginal RSS per stream (second half)',
      herald: h.marginalKiB,
      peer: p?.marginalKiB ?? null,
      unit: 'KiB',
      ratio: ratio(h.marginalKiB, p?.marginalKiB ?? null),
    },
    { scenario: '', metric: 'streams open', herald: h.opened, peer: p?.opened ?? null, unit: '' },
    { scenario: '', metric: 'time to accept all', herald: h.acceptMs, peer: p?.acceptMs ?? null, unit: 'ms', ratio: ratio(h.acceptMs, p?.acceptMs ?? null) },
    { scenario: '', metric: 'server RSS: none → half → all', herald: null, peer: null, unit: '', text: [mem(h), p ? mem(p) : '–'] },
  );
  if (w) {
    rows.push(
      {
        scenario: '',
        metric: `Herald over its WebSocket: RSS per stream (${w.opened.toLocaleString('en-US')} open)`,
        herald: w.perStreamKiB,
        peer: p?.perStreamKiB ?? null,
        unit: 'KiB',
        ratio: ratio(w.perStreamKiB, p?.perStreamKiB ?? null),
      },
      { scenario: '', metric: 'Herald over its WebSocket: time to accept all', herald: w.acceptMs, peer: p?.acceptMs ?? null, unit: 'ms', ratio: ratio(w.acceptMs, p?.acceptMs ?? null) },
    );
  }
  return { rows, raw };
}
