// The Pusher protocol: broadcast fan-out to N sockets subscribed to one channel, and idle memory per
// socket, Herald (as pusher-js speaks to it) against the Socket.IO peer. The publisher posts to the
// channel's topic through POST /notifications: the same commit and fan-out path as the Pusher HTTP API.
import { measureDelivery } from '../delivery.js';
import type { Options } from '../options.js';
import { ratio, type Row, type Section } from '../report.js';
import { eachContender, startHerald, withServer, type Contenders } from '../servers.js';
import { fanoutRows } from './fanout.js';
import { idleOne } from './idle.js';

export async function pusher(o: Options, c: Contenders): Promise<Section> {
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
  const contenders: Contenders = { herald: () => startHerald(o, {}, 'pusher'), heraldWs: null, peer: c.peer };
  for (const n of o.sizes) {
    const rate = Math.max(1, Math.round(o.offered / n));
    const r = await eachContender(contenders, `pusher fan-out ${n}`, (start) => withServer(start, (s) => measureDelivery(o, [s], n, rate, 'broadcast')));
    raw[`pusherFanout${n}`] = r;
    const [delivered, ...rest] = fanoutRows(r.herald, r.peer);
    rows.push({ ...delivered!, scenario: `Pusher protocol fan-out: ${n.toLocaleString('en-US')} sockets on one channel, ${rate}/s for ${o.seconds} s` }, ...rest);
  }
  const idle = await eachContender(contenders, 'pusher idle', (start) => withServer(start, (s) => idleOne(o, s, o.idle)));
  raw.pusherIdle = idle;
  const { herald: h, peer: p } = idle;
  rows.push(
    {
      scenario: `Pusher protocol idle: ${o.idle.toLocaleString('en-US')} sockets, one channel each`,
      metric: 'server RSS per socket',
      herald: h.perStreamKiB,
      peer: p?.perStreamKiB ?? null,
      unit: 'KiB',
      ratio: ratio(h.perStreamKiB, p?.perStreamKiB ?? null),
    },
    { scenario: '', metric: 'sockets open', herald: h.opened, peer: p?.opened ?? null, unit: '' },
    { scenario: '', metric: 'time to accept all', herald: h.acceptMs, peer: p?.acceptMs ?? null, unit: 'ms', ratio: ratio(h.acceptMs, p?.acceptMs ?? null) },
  );
  return { rows, raw };
}
