// The bench's output: the table every scenario adds rows to (Markdown, printed to stdout), the
// formatting of its cells, the JSON result file with every raw number, and the progress log (stderr).
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { DeliveryResult, Percentiles } from './delivery.js';
import { hardFdLimit } from './lib.js';
import type { LoopStats } from './loop.js';
import type { Options } from './options.js';

export interface Row {
  scenario: string;
  metric: string;
  herald: number | null;
  peer: number | null;
  unit: string;
  /** Herald/peer. */
  ratio?: string;
  target?: string;
  met?: boolean;
  /** Herald and peer cells as text, where one number does not say it (p50 / p99 / max). */
  text?: [string, string];
}

/** What a scenario adds to the report: its rows of the table, and its raw numbers under its own keys. */
export interface Section {
  rows: Row[];
  raw: Record<string, unknown>;
}

export const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

export const fmt = (v: number | null, unit: string): string => {
  if (v === null || Number.isNaN(v)) return '–';
  const digits = unit === 'cores' ? 2 : unit === '%' ? 1 : unit === 'ms' || unit === 'KiB' || unit === 'µs' ? (v < 10 ? 2 : v < 100 ? 1 : 0) : 0;
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) + (unit ? ` ${unit}` : '');
};

export function table(rows: Row[]): string {
  const head = ['Scenario', 'Metric', 'Herald', 'Socket.IO peer', 'Herald/peer', 'Target', 'Met'];
  const lines = rows.map((r) => [
    r.scenario,
    r.metric,
    r.text ? r.text[0] : fmt(r.herald, r.unit),
    r.text ? r.text[1] : fmt(r.peer, r.unit),
    r.ratio ?? '',
    r.target ?? '',
    r.met === undefined ? '' : r.met ? 'yes' : 'no',
  ]);
  const md = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [md(head), md(head.map(() => '---')), ...lines.map(md)].join('\n');
}

export const lat = (x: Percentiles) => `${fmt(x.p50, 'ms')} / ${fmt(x.p99, 'ms')} / ${fmt(x.max, 'ms')}`;

export const warm = (x: DeliveryResult) => (x.warmup ? lat(x.warmup) : '–');

export const rtt = (x: DeliveryResult) => `${fmt(x.publishRttP50, 'ms')} / ${fmt(x.publishRttP99, 'ms')}`;

/**
 * The server's event loop beside a run's latency: how late it ran (p50 / p99 / max) and its GC pauses
 * (total, count, longest); `label` prefixes the metric names. The peer has no such figures.
 */
export function loopRows(x: LoopStats | null, label = ''): Row[] {
  const metric = (m: string) => (label ? `${label}: ${m}` : m);
  const text = (s: string): [string, string] => [x ? s : '–', '–'];
  return [
    { scenario: '', metric: metric('server event-loop delay p50 / p99 / max'), herald: null, peer: null, unit: '', text: text(x ? `${fmt(x.delayP50, 'ms')} / ${fmt(x.delayP99, 'ms')} / ${fmt(x.delayMax, 'ms')}` : '') },
    {
      scenario: '',
      metric: metric('server GC pauses: total (count) / longest'),
      herald: null,
      peer: null,
      unit: '',
      text: text(x ? `${fmt(x.gcTotalMs, 'ms')} (${x.gcCount.toLocaleString('en-US')}) / ≤ ${fmt(x.gcMaxMs, 'ms')}` : ''),
    },
  ];
}

export const ratio = (h: number | null, p: number | null): string => (h === null || p === null || !p ? '' : `${(h / p).toFixed(2)}×`);

/** Writes the JSON result: the run's command, machine and options, the rows, the printed table and every raw number. */
export function writeResult(
  file: string,
  run: { started: Date; loadBefore: number[]; options: Options; rows: Row[]; table: string; raw: Record<string, unknown> },
): void {
  const o = run.options;
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(
    file,
    JSON.stringify(
      {
        started: run.started.toISOString(),
        finished: new Date().toISOString(),
        command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
        machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memMiB: Math.round(os.totalmem() / 1048576), loadBefore: run.loadBefore, loadAfter: os.loadavg(), node: process.version, fdLimit: hardFdLimit() },
        options: { ...o, only: [...o.only] },
        rows: run.rows,
        table: run.table,
        raw: run.raw,
      },
      null,
      2,
    ) + '\n',
  );
}
