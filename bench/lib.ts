// Shared by the bench orchestrator and its load processes: process spawning, clocks, histograms.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/bench, where the compiled bench scripts live next to each other. */
export const benchDir = dirname(fileURLToPath(import.meta.url));

/**
 * Milliseconds on CLOCK_MONOTONIC, which every process on the machine shares: a timestamp taken by
 * the publisher process can be compared with one taken by a client process.
 */
export function nowMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}

/** Resident set size of a process, in bytes (Linux /proc). */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/**
 * CPU time (user + system) a process has used so far, in ms (Linux /proc); with `mainThread`, only
 * its main thread's (a Node process's event loop), whose thread id is the process id.
 */
export function cpuMsOf(pid: number, mainThread = false): number {
  // Fields after the ")" of the command name; utime and stime are fields 14 and 15 of the whole line.
  const stat = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ is 100 on Linux
}

/** Write-like syscalls a process has made so far (`write`, `writev`, `sendmsg`...; Linux /proc). */
export function writeSyscallsOf(pid: number): number {
  const m = /syscw:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
  if (!m) throw new Error(`no syscw for pid ${pid}`);
  return Number(m[1]);
}

/**
 * Latency histogram with fixed 0.1 ms buckets up to 60 s (beyond lands in the last bucket; the exact
 * max is kept apart). Mergeable across processes, so percentiles cover every client together.
 */
export class Histogram {
  static readonly bucketMs = 0.1;
  static readonly buckets = 600_000;
  readonly counts = new Uint32Array(Histogram.buckets);
  count = 0;
  max = 0;

  record(ms: number): void {
    const v = ms < 0 ? 0 : ms;
    const b = Math.min(Histogram.buckets - 1, Math.floor(v / Histogram.bucketMs));
    this.counts[b]!++;
    this.count++;
    if (v > this.max) this.max = v;
  }

  /** Sparse form for IPC: [bucket, count] pairs. */
  toJSON(): { pairs: [number, number][]; max: number } {
    const pairs: [number, number][] = [];
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i]) pairs.push([i, this.counts[i]!]);
    return { pairs, max: this.max };
  }

  merge(h: { pairs: [number, number][]; max: number }): void {
    for (const [b, c] of h.pairs) {
      this.counts[b]! += c;
      this.count += c;
    }
    if (h.max > this.max) this.max = h.max;
  }

  percentile(p: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min((i + 1) * Histogram.bucketMs, this.max);
    }
    return this.max;
  }
}

/** The hard file-descriptor limit of this container, read through the shell that raises the soft one. */
export function hardFdLimit(): number {
  const m = /Max open files\s+\d+\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? 1_048_576 : Number(m[1]);
}

/** Every process spawnNode started that is still running: none may outlive the bench. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Runs `node script args` with its soft file-descriptor limit raised to the hard limit (through the
 * shell's `ulimit`, since Node cannot call setrlimit), with an IPC channel when `ipc` is set.
 */
export function spawnNode(
  script: string,
  args: string[],
  opts: { env?: Record<string, string>; ipc?: boolean; nodeArgs?: string[] } = {},
): ChildProcess {
  const node = process.execPath;
  const child = spawn('bash', ['-c', 'ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"', node, ...(opts.nodeArgs ?? []), script, ...args], {
    env: { PATH: process.env.PATH ?? '', ...opts.env },
    stdio: opts.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.on('exit', () => running.delete(child));
  return child;
}

export const benchScript = (name: string): string => join(benchDir, `${name}.js`);

/** Messages between the orchestrator and a load process: a request carries `op`, the answer the same `op`. */
export interface Msg {
  op: string;
  [k: string]: unknown;
}

/**
 * A load process driven over IPC: `call` sends a request and resolves with its answer, or rejects
 * if the process exits or the answer takes longer than `ms`.
 */
export class Worker {
  private out = '';
  private readonly exited: Promise<void>;
  constructor(readonly proc: ChildProcess) {
    proc.stdout!.on('data', (d: Buffer) => (this.out = (this.out + d.toString()).slice(-20_000)));
    proc.stderr!.on('data', (d: Buffer) => (this.out = (this.out + d.toString()).slice(-20_000)));
    this.exited = new Promise((r) => proc.on('exit', () => r()));
  }

  call<T extends Msg>(msg: Msg, ms = 120_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`${msg.op}: no answer within ${ms} ms\n${this.out}`)), ms);
      const onMsg = (m: Msg) => {
        if (m.op === msg.op) done(undefined, m as T);
        else if (m.op === 'error') done(new Error(`${msg.op}: ${String(m.message)}`));
      };
      const onExit = () => done(new Error(`${msg.op}: load process exited\n${this.out}`));
      const done = (err?: Error, v?: T) => {
        clearTimeout(timer);
        this.proc.off('message', onMsg);
        this.proc.off('exit', onExit);
        if (err) reject(err);
        else resolve(v!);
      };
      this.proc.on('message', onMsg);
      this.proc.on('exit', onExit);
      this.proc.send(msg);
    });
  }

  /** Asks it to exit, and kills it if it has not within 5 s. */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    try {
      this.proc.send({ op: 'exit' });
    } catch {
      // The channel is already closed; the kill below still applies.
    }
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** In a load process: answers each request from the orchestrator with `handler`'s result. */
export function serve(handler: (msg: Msg) => Promise<Msg | undefined> | Msg | undefined): void {
  process.on('message', (msg: Msg) => {
    if (msg.op === 'exit') process.exit(0);
    Promise.resolve()
      .then(() => handler(msg))
      .then((answer) => answer && process.send!(answer))
      .catch((err: unknown) => process.send!({ op: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }));
  });
  // An orphaned load process (the orchestrator died) must not linger.
  process.on('disconnect', () => process.exit(0));
}
