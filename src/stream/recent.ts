import type { Bus } from '../bus/bus.js';
import { isMuted } from '../domain/preferences.js';
import type { Metrics } from '../metrics.js';
import type { CatchUp, ReplayState, Store } from '../store/store.js';
import type { Audience, StoredNotification } from '../types.js';
import { reaches } from './hub.js';

/**
 * What a resuming stream reads: the store's `catchUp`, or the same answer from the ring, with one
 * difference: from an id below the pruned horizon, which a stream must answer with a reload, the ring
 * replays nothing (memory cannot know which of those rows retention deleted).
 */
export type Replay = Pick<Store, 'catchUp'>;

/** How long a batch gathers resumes: a small delay to a resume, far fewer store reads in a storm. */
const batchMs = 5;

interface Request {
  audience: Audience;
  afterId: number;
  limit: number;
  resolve(c: CatchUp): void;
  reject(err: unknown): void;
}

/** The first index of `entries` (ids ascending) whose id is above `id`. */
function firstAbove(entries: readonly StoredNotification[], end: number, id: number): number {
  let lo = 0;
  let hi = end;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid]!.id <= id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The last notifications of every audience, in memory in front of the store, so that thousands of
 * streams resuming at once (a restart, a network blip) do not cost a store query each.
 *
 * It holds every notification with `from < id <= newest`: seeded with one `range` read at start, then
 * fed by the bus, which delivers every committed notification in id order (a Redis bus repairs its own
 * gaps from the store before it passes a later id on), so it never has a hole. Resumes are answered in
 * batches, one batch at a time: a batch gathers the resumes of a few milliseconds (everything asked
 * while one is read waits for the next), and costs at most two store reads whatever its size: the rows below the ring that its misses need
 * (one `range`, kept in the ring afterwards), and what `since` hides per user that memory cannot know
 * for sure (deletions, pruning horizons, possibly changed on another instance) in one `replayStates`.
 * Each answer is what `catchUp` would give: the same audience rule as the hub, the same page.
 */
export class RecentRing implements Replay {
  /** Ids ascending; only appended to until replaced, so a batch in progress can keep reading its copy. */
  private entries: StoredNotification[] = [];
  private from = 0;
  private newest = 0;
  private ready = false;
  /** Notifications routed while the seed was read; those above the seed are appended once it is in. */
  private early: StoredNotification[] | null = [];
  private pending: Request[] = [];
  private busy = false;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: Store,
    bus: Bus,
    /** Notifications kept: between this and twice this, dropped oldest first. 0 turns the ring off. */
    private readonly capacity: number,
    private readonly metrics: Metrics,
  ) {
    this.unsubscribe =
      capacity > 0
        ? bus.subscribe((msg) => {
            if (msg.kind === 'notification') this.add(msg.notification);
          })
        : () => {};
  }

  /** Reads the seed: until it is in, every resume reads the store as without a ring. */
  async seed(): Promise<void> {
    if (this.capacity === 0) return;
    const head = await this.store.lastId();
    // Ids become visible in order: every one up to head is in this read, every later one comes by the bus.
    const from = Math.max(0, head - this.capacity);
    this.entries = await this.store.range(from, head);
    this.from = from;
    this.newest = head;
    const early = this.early ?? [];
    this.early = null;
    for (const n of early) this.add(n);
    this.ready = true;
  }

  private add(n: StoredNotification): void {
    if (this.early) return void this.early.push(n);
    // Already in the seed (committed before it, announced after).
    if (n.id <= this.newest) return;
    this.entries.push(n);
    this.newest = n.id;
    if (this.entries.length > 2 * this.capacity) {
      const dropped = this.entries.length - this.capacity;
      this.from = this.entries[dropped - 1]!.id;
      this.entries = this.entries.slice(dropped);
    }
  }

  catchUp(audience: Audience, afterId: number, limit: number): Promise<CatchUp> {
    // Ahead of what this instance has routed (another instance's id, a reset store) or further behind
    // than one shared read should fetch: the store answers this one alone.
    if (!this.ready || afterId > this.newest || this.from - afterId > this.capacity) {
      this.metrics.replayed('bypass');
      this.metrics.replayRead('catchup');
      return this.store.catchUp(audience, afterId, limit);
    }
    return new Promise((resolve, reject) => {
      // The audience as it is now, as the store would read it (a subscription's topics are a getter).
      this.pending.push({ audience: { user: audience.user, topics: audience.topics }, afterId, limit, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.busy) return;
    this.busy = true;
    // Reconnecting clients arrive spread over their retry interval, a few per turn of the event loop:
    // a short wait gathers many of them into one batch (one read of their users' state).
    setTimeout(() => void this.answerBatch(), batchMs);
  }

  private async answerBatch(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    // The ring as it stands now; what arrives meanwhile reaches these streams live (they joined the hub first).
    const entries = this.entries;
    const end = entries.length;
    const from = this.from;
    const upTo = this.newest;
    try {
      const lowest = batch.reduce((min, r) => Math.min(min, r.afterId), Infinity);
      const older = lowest < from ? await this.readBelow(lowest, from) : [];
      this.metrics.replayRead('states');
      const states = await this.store.replayStates([...new Set(batch.map((r) => r.audience.user))], lowest);
      let misses = 0;
      for (const r of batch) {
        if (r.afterId < from) misses++;
        r.resolve(this.answer(r, older, entries, end, upTo, states.get(r.audience.user)!));
      }
      this.metrics.replayed('hit', batch.length - misses);
      this.metrics.replayed('miss', misses);
    } catch (err) {
      for (const r of batch) r.reject(err);
    } finally {
      this.busy = false;
      if (this.pending.length > 0) this.schedule();
    }
  }

  /** Rows in (afterId, upTo], shared by every miss of a batch and kept for the next, if the ring has room. */
  private async readBelow(afterId: number, upTo: number): Promise<StoredNotification[]> {
    this.metrics.replayRead('range');
    const rows = await this.store.range(afterId, upTo);
    if (this.from === upTo && rows.length + this.entries.length <= 2 * this.capacity) {
      this.entries = rows.concat(this.entries);
      this.from = afterId;
    }
    return rows;
  }

  private answer(
    r: Request,
    older: readonly StoredNotification[],
    entries: readonly StoredNotification[],
    end: number,
    upTo: number,
    state: ReplayState,
  ): CatchUp {
    const missed: StoredNotification[] = [];
    if (r.afterId < state.prunedUpTo) return { head: upTo, missed, prunedUpTo: state.prunedUpTo };
    const hidden = new Set(state.deleted);
    const mutes = { types: new Set(state.mutes.types), topics: new Set(state.mutes.topics) };
    const pick = (list: readonly StoredNotification[], start: number, stop: number): void => {
      for (let i = start; i < stop && missed.length < r.limit; i++) {
        const n = list[i]!;
        if (!hidden.has(n.id) && reaches(n, r.audience) && !isMuted(mutes, n)) missed.push(n);
      }
    };
    pick(older, firstAbove(older, older.length, r.afterId), older.length);
    pick(entries, firstAbove(entries, end, r.afterId), end);
    return { head: upTo, missed, prunedUpTo: state.prunedUpTo };
  }

  close(): void {
    this.unsubscribe();
  }
}
