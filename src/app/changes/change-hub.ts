import type { Revision } from "../../domain/binding.js";
import { RevisionCompacted } from "../../domain/errors.js";
import type { ChangeEvent, ChangeSink, FollowerTransport, Following } from "../../ports/changes.js";
import type { IdentityKv, KvChange, WatchHandle } from "../../ports/identity-kv.js";
import type { Logger } from "../../ports/logger.js";

export interface HubOptions {
  /** Changes kept in memory, so a follower a little behind is served without a watch of its own. */
  readonly bufferSize: number;
  readonly heartbeatMs: number;
  /** Delay before the hub's own watch is started again after it failed. */
  readonly retryMs?: number;
  /**
   * At most one batch (one write per follower) every this many milliseconds: with many followers,
   * fewer larger writes cost the service less. A change arriving when the last batch is at least
   * this old goes out at the end of the task that delivered it; one arriving sooner waits for the
   * rest of the interval. 0: at the end of every task that delivers changes.
   */
  readonly coalesceMs?: number;
  /** Counts what was sent (the metrics' events sent). */
  readonly onSent?: (transport: FollowerTransport, events: number) => void;
}

/** What the metrics read at scrape time. */
export interface HubStats {
  readonly followers: Readonly<Record<FollowerTransport, number>>;
  /** The largest number of revisions a follower is behind the hub's newest. */
  readonly maxLagRevisions: number;
  readonly head: Revision;
}

interface Follower {
  readonly transport: FollowerTransport;
  readonly sink: ChangeSink;
  cursor: Revision;
  /** Set while the follower catches up on a watch of its own, before the hub's buffer reaches back to it. */
  own?: { handle?: WatchHandle; pending: ChangeEvent[]; flushing: boolean };
  closed: boolean;
}

/**
 * One watch of the map per instance, fanned out to every follower. The hub keeps the last
 * `bufferSize` changes: a follower that starts (or resumes) within them is served from memory and
 * then live; one further behind follows a watch of its own from its revision until it reaches what
 * the buffer holds, then joins. So N followers cost the store one watch, not N, once they are current.
 *
 * Delivery is batched, and a batch never splits a revision: a batch is sent at the end of a task
 * (a microtask) or from a timer, never while the store's callback is still delivering, and every
 * adapter delivers a revision's events within one task (etcd: one watch response), so a follower
 * resuming after the last revision it saw misses nothing and sees nothing twice.
 *
 * When a batch goes out: at most one per `coalesceMs`. A change that arrives when the last batch is
 * at least that old goes out at the end of the task that delivered it, so under a steady flow the
 * stream does not wait for the event loop to come round to a timer (on a busy service that wait,
 * behind every queued request, was most of a follower's latency); only the tail of a burst waits
 * for the timer.
 */
export class ChangeHub {
  private readonly buffer: ChangeEvent[] = [];
  /** Every change after this revision is in `buffer` or still to come from the hub's watch. */
  private coveredAfter: Revision = 0;
  private newest: Revision = 0;
  private readonly followers = new Set<Follower>();
  private pending: ChangeEvent[] = [];
  /** A flush is queued (a microtask) or timed (`flushTimer`). */
  private flushScheduled = false;
  private flushTimer: NodeJS.Timeout | undefined;
  /** performance.now() of the last flush that sent a batch. */
  private lastFlushAt = Number.NEGATIVE_INFINITY;
  private handle: WatchHandle | undefined;
  private started: Promise<void> | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private lastSent = new WeakMap<Follower, number>();

  constructor(
    private readonly kv: IdentityKv,
    private readonly prefix: string,
    private readonly decode: (change: KvChange) => ChangeEvent | null,
    private readonly log: Logger,
    private readonly options: HubOptions,
  ) {}

  /** Starts the hub's watch at the store's newest revision (once; later calls wait for the first). */
  start(): Promise<void> {
    this.started ??= this.open().then(() => {
      this.heartbeat = setInterval(() => this.beat(), Math.max(50, Math.floor(this.options.heartbeatMs / 2)));
      this.heartbeat.unref();
    });
    return this.started;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    for (const f of this.followers) this.detach(f);
    await this.handle?.stop().catch(() => {});
  }

  /** The newest revision the hub has seen (the store's, when it started). */
  get head(): Revision {
    return this.newest;
  }

  stats(): HubStats {
    const followers: Record<FollowerTransport, number> = { rest: 0, grpc: 0, webhook: 0 };
    let maxLag = 0;
    for (const f of this.followers) {
      followers[f.transport]++;
      maxLag = Math.max(maxLag, this.newest - f.cursor);
    }
    return { followers, maxLagRevisions: maxLag, head: this.newest };
  }

  /**
   * Follows from `since`: refused with RevisionCompacted when the store no longer remembers what
   * came after it. The check is made against the store, not the buffer, so every instance sharing
   * a store answers a given `since` the same way.
   */
  async follow(since: Revision, sink: ChangeSink, transport: FollowerTransport, field = "since"): Promise<Following> {
    await this.start();
    const point = await this.kv.resumePoint(since);
    if (!point.resumable)
      throw new RevisionCompacted(field, point.head, point.reason ?? `cannot resume after ${since}`);
    const f: Follower = { transport, sink, cursor: since, closed: false };
    this.lastSent.set(f, Date.now());
    if (since >= this.coveredAfter) {
      // Pending changes go into the buffer first (and to the others), then the buffer to this one.
      this.flush();
      this.followers.add(f);
      this.join(f);
      this.current(f);
    } else {
      this.followers.add(f);
      // The head first, so the follower knows how far behind it starts.
      sink.heartbeat(this.newest, false);
      await this.catchUp(f);
    }
    return {
      get cursor() {
        return f.cursor;
      },
      close: () => this.detach(f),
    };
  }

  private async open(): Promise<void> {
    const { head } = await this.kv.resumePoint(0);
    this.coveredAfter = head;
    this.newest = Math.max(this.newest, head);
    await this.watchFrom(head);
  }

  private async watchFrom(after: Revision): Promise<void> {
    this.handle = await this.kv.watch(
      this.prefix,
      after,
      (c) => this.receive(c),
      (e) => this.failed(e),
    );
  }

  private receive(c: KvChange): void {
    this.newest = Math.max(this.newest, c.revision);
    const event = this.decode(c);
    if (!event) return;
    this.pending.push(event);
    const wait = this.lastFlushAt + (this.options.coalesceMs ?? 0) - performance.now();
    if (wait <= 0) {
      // Due: at the end of this task, once the store has delivered everything it is delivering now.
      if (this.flushTimer) {
        clearTimeout(this.flushTimer);
        this.flushTimer = undefined;
        this.flushScheduled = false;
      }
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        queueMicrotask(() => this.flush());
      }
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.flushTimer = setTimeout(() => this.flush(), wait);
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    this.lastFlushAt = performance.now();
    for (const e of batch) this.buffer.push(e);
    this.trim();
    for (const f of this.followers) {
      if (f.own || f.closed) continue;
      const fresh = batch[0]!.revision > f.cursor ? batch : batch.filter((e) => e.revision > f.cursor);
      this.send(f, fresh);
    }
  }

  /** Drops the oldest changes beyond the buffer's size, whole revisions at a time. */
  private trim(): void {
    const excess = this.buffer.length - this.options.bufferSize;
    if (excess <= 0) return;
    let cut = excess;
    const last = this.buffer[cut - 1]!.revision;
    while (cut < this.buffer.length && this.buffer[cut]!.revision === last) cut++;
    this.buffer.splice(0, cut);
    this.coveredAfter = Math.max(this.coveredAfter, last);
  }

  private send(f: Follower, events: readonly ChangeEvent[]): void {
    if (events.length === 0 || f.closed) return;
    f.cursor = events[events.length - 1]!.revision;
    this.lastSent.set(f, Date.now());
    this.options.onSent?.(f.transport, events.length);
    try {
      f.sink.changes(events);
    } catch (e) {
      this.log.warn({ err: String(e) }, "change follower failed; dropping it");
      this.detach(f);
    }
  }

  /** Serves the buffer after the follower's cursor, then live changes. */
  private join(f: Follower): void {
    delete f.own;
    this.send(
      f,
      this.buffer.filter((e) => e.revision > f.cursor),
    );
  }

  /** A watch of the follower's own until the buffer reaches back to its cursor. */
  private async catchUp(f: Follower): Promise<void> {
    const own: NonNullable<Follower["own"]> = { pending: [], flushing: false };
    f.own = own;
    const flushOwn = () => {
      own.flushing = false;
      if (f.closed || f.own !== own) return;
      const batch = own.pending;
      own.pending = [];
      this.send(
        f,
        batch.filter((e) => e.revision > f.cursor),
      );
      if (f.cursor >= this.coveredAfter) {
        void own.handle?.stop().catch(() => {});
        this.flush();
        this.join(f);
        this.current(f);
      }
    };
    try {
      own.handle = await this.kv.watch(
        this.prefix,
        f.cursor,
        (c) => {
          const event = this.decode(c);
          if (!event) return;
          own.pending.push(event);
          if (!own.flushing) {
            own.flushing = true;
            setImmediate(flushOwn);
          }
        },
        (e) => this.end(f, e),
      );
    } catch (e) {
      this.detach(f);
      throw e;
    }
    if (f.closed) void own.handle.stop().catch(() => {});
  }

  private beat(): void {
    const now = Date.now();
    // Whatever the watch delivered is sent first, so "current through the head" is true.
    this.flush();
    for (const f of this.followers) {
      if (f.closed) continue;
      if (now - (this.lastSent.get(f) ?? 0) < this.options.heartbeatMs) continue;
      this.lastSent.set(f, now);
      if (f.own) this.tell(f, this.newest, false);
      else this.current(f);
    }
  }

  /** A joined follower has every change through the hub's newest revision (nothing is pending). */
  private current(f: Follower): void {
    f.cursor = Math.max(f.cursor, this.newest);
    this.tell(f, f.cursor, true);
  }

  private tell(f: Follower, head: Revision, current: boolean): void {
    try {
      f.sink.heartbeat(head, current);
    } catch {
      this.detach(f);
    }
  }

  private end(f: Follower, error: Error): void {
    if (f.closed) return;
    this.detach(f);
    f.sink.end(error);
  }

  private detach(f: Follower): void {
    f.closed = true;
    this.followers.delete(f);
    if (f.own?.handle) void f.own.handle.stop().catch(() => {});
  }

  /**
   * The hub's watch failed. It resumes from the last change it delivered while the store still
   * remembers what came after; otherwise every follower it served is ended (each resumes or takes a
   * new snapshot) and the hub starts again at the store's newest revision.
   */
  private failed(error: Error): void {
    if (this.stopped) return;
    this.log.warn({ err: error.message }, "change hub watch failed; resuming");
    this.handle = undefined;
    const resume = async () => {
      this.retry = undefined;
      if (this.stopped) return;
      try {
        this.flush();
        const after = this.newest;
        const point = await this.kv.resumePoint(after);
        if (point.resumable) {
          await this.watchFrom(after);
          return;
        }
        for (const f of this.followers)
          if (!f.own) this.end(f, new RevisionCompacted("since", point.head, point.reason ?? ""));
        this.buffer.length = 0;
        this.coveredAfter = point.head;
        this.newest = point.head;
        await this.watchFrom(point.head);
      } catch (e) {
        this.log.warn({ err: String(e) }, "change hub cannot resume yet");
        this.retry = setTimeout(resume, this.options.retryMs ?? 1_000);
      }
    };
    this.retry = setTimeout(resume, this.options.retryMs ?? 1_000);
  }
}
