// Fan-out on two instances (`--only fanout2`), against one instance on the same PostgreSQL and Redis.
import { missingBackends, startPostgres, startRedis, type PostgresServer, type RedisServer } from '../../support/backends.js';
import { measureDelivery, type DeliveryResult, type InstanceResult } from '../delivery.js';
import type { Options } from '../options.js';
import { fmt, lat, log, ratio, rtt, type Row, type Section } from '../report.js';
import { startHerald, withServers } from '../servers.js';

/**
 * Scale-out: Herald on a real PostgreSQL store and Redis bus (throwaway servers, as the scale-out
 * tests start them), the streams split across two instances and every broadcast published to the
 * first; then, for the ratio, the same on one instance with the same store and bus. Each run gets a
 * fresh database; the instances, PostgreSQL and Redis are stopped whatever happens.
 */
export async function fanout2(o: Options): Promise<Section> {
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
  const n = o.fanout2Streams;
  const rate = o.fanout2Rate || Math.max(1, Math.round(o.offered / n));
  const scen = `Fan-out on 2 instances (PostgreSQL + Redis): ${n.toLocaleString('en-US')} streams split across them, broadcast ${rate}/s for ${o.seconds} s to one`;
  const missing = missingBackends();
  if (missing.length > 0) {
    const why = `skipped: ${missing.join(' and ')} not installed (apt-get install -y ${missing.join(' ')})`;
    log(`fanout2 ${why}`);
    raw.fanout2 = { skipped: why };
    rows.push({ scenario: scen, metric: 'delivered events/s', herald: null, peer: null, unit: '', text: [why, '–'] });
    return { rows, raw };
  }
  let redis: RedisServer | undefined;
  let postgres: PostgresServer | undefined;
  let results: [DeliveryResult, DeliveryResult];
  try {
    const bus = (redis = await startRedis());
    const store = (postgres = await startPostgres());
    const run = async (instances: number): Promise<DeliveryResult> => {
      const env = { HERALD_STORE: await store.newDatabase(), HERALD_BUS: bus.url };
      const starts = Array.from({ length: instances }, () => () => startHerald(o, env));
      const res = await withServers(starts, (servers) => measureDelivery(o, servers, n, rate, 'broadcast'));
      log(`fanout2, ${instances} instance(s): ${JSON.stringify(res)}`);
      return res;
    };
    results = [await run(1), await run(2)];
  } finally {
    await postgres?.stop();
    await redis?.stop();
  }
  const [one, two] = results;
  const [near, far] = two.instances as [InstanceResult, InstanceResult];
  const pct = (x: { received: number; expected: number | null }) => (x.expected ? fmt((x.received / x.expected) * 100, '%') : '–');
  raw.fanout2 = { streams: n, rate, twoInstances: two, oneInstance: one, ratio: two.deliveredPerSec / one.deliveredPerSec };
  rows.push(
    { scenario: scen, metric: 'delivered events/s, 2 instances', herald: two.deliveredPerSec, peer: null, unit: '/s' },
    { scenario: '', metric: 'delivered events/s, 1 instance (same PostgreSQL + Redis)', herald: one.deliveredPerSec, peer: null, unit: '/s' },
    { scenario: '', metric: '2 instances / 1 instance', herald: null, peer: null, unit: '', text: [ratio(two.deliveredPerSec, one.deliveredPerSec), '–'] },
    { scenario: '', metric: 'POST→client p50 / p99 / max, 2 instances', herald: null, peer: null, unit: '', text: [lat(two), '–'] },
    { scenario: '', metric: 'POST→client p50 / p99 / max, 1 instance', herald: null, peer: null, unit: '', text: [lat(one), '–'] },
    { scenario: '', metric: 'POST round trip p50 / p99, 2 instances; 1 instance', herald: null, peer: null, unit: '', text: [`${rtt(two)}; ${rtt(one)}`, '–'] },
    { scenario: '', metric: 'POST→client p99, 2 instances: published to / other', herald: null, peer: null, unit: '', text: [`${fmt(near.p99, 'ms')} / ${fmt(far.p99, 'ms')}`, '–'] },
    {
      scenario: '',
      metric: 'delivered / expected, 2 instances: published to / other',
      herald: null,
      peer: null,
      unit: '',
      text: [`${pct(near)} / ${pct(far)}`, '–'],
      target: 'all, on each',
      met: two.instances.every((x) => x.received === x.expected),
    },
    { scenario: '', metric: 'delivered / expected, 1 instance', herald: (one.received / one.expected) * 100, peer: null, unit: '%' },
    {
      scenario: '',
      metric: 'server CPU per delivered event, 2 / 1 instances',
      herald: null,
      peer: null,
      unit: '',
      text: [`${fmt(two.serverCpuUsPerEvent, 'µs')} / ${fmt(one.serverCpuUsPerEvent, 'µs')}`, '–'],
    },
  );
  return { rows, raw };
}
