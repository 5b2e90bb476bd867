import { IdentityMapError, KvUnavailable, WriteOutcomeUnknown } from "../../domain/errors.js";

/**
 * The edge between a KV adapter and its client library: every call gets a deadline, domain errors
 * pass through, and everything else becomes `KvUnavailable` (reads, and writes that certainly never
 * left the process) or `WriteOutcomeUnknown` (writes that may have reached the server). The deadline
 * backs up the client's own timeouts, so no call hangs whatever the library does.
 */
export class KvBoundary {
  constructor(
    private readonly backend: string,
    private readonly timeoutMs: number,
    /** True when the error proves the write was never sent (not connected, refused before sending). */
    private readonly notSent: (error: unknown) => boolean = () => false,
    /**
     * Asked after a call failed, on a clustered store: resolves to a description when the cluster
     * has no quorum, so the 503 says so instead of only "no answer". Bounded by the adapter.
     */
    private readonly quorumLost: () => Promise<string | undefined> = async () => undefined,
  ) {}

  /** Set once a failed call found no quorum: later calls ask first, and fail at once while it lasts. */
  private withoutQuorum = false;
  private lastProbe: { at: number; result: Promise<string | undefined> } | undefined;

  read<T>(op: string, f: () => Promise<T>): Promise<T> {
    return this.call(op, f, false);
  }

  write<T>(op: string, f: () => Promise<T>): Promise<T> {
    return this.call(op, f, true);
  }

  private async call<T>(op: string, f: () => Promise<T>, isWrite: boolean): Promise<T> {
    if (this.withoutQuorum) {
      // Without a majority a call would only wait for its deadline: answer at once, naming why, and
      // go back to calling the store as soon as the cluster has a quorum again.
      const still = await this.probe();
      if (still)
        throw new KvUnavailable(`${this.backend}: no quorum (${still}): ${op} not sent`, { reason: "no_quorum" });
      this.withoutQuorum = false;
    }
    let timer: NodeJS.Timeout | undefined;
    const work = f();
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DeadlineExceeded(`${op} got no answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
    });
    try {
      return await Promise.race([work, deadline]);
    } catch (e) {
      // A call abandoned at the deadline may still fail later; that failure has been reported already.
      work.catch(() => {});
      if (e instanceof IdentityMapError) throw e;
      const noQuorum = await this.probe();
      if (noQuorum) this.withoutQuorum = true;
      const message = `${this.backend}: ${noQuorum ? `no quorum (${noQuorum}): ` : ""}${op}: ${describe(e)}`;
      const options = { cause: e, ...(noQuorum ? { reason: "no_quorum" as const } : {}) };
      if (isWrite && !this.notSent(e)) throw new WriteOutcomeUnknown(message, options);
      throw new KvUnavailable(message, options);
    } finally {
      clearTimeout(timer);
    }
  }

  private probe(): Promise<string | undefined> {
    const now = performance.now();
    if (!this.lastProbe || now - this.lastProbe.at > PROBE_REUSE_MS)
      this.lastProbe = { at: now, result: this.quorumLost().catch(() => undefined) };
    return this.lastProbe.result;
  }
}

/** How long one quorum answer serves every call that asks (a burst of failures asks once). */
const PROBE_REUSE_MS = 250;

export class DeadlineExceeded extends Error {
  override readonly name = "DeadlineExceeded";
}

export function describe(e: unknown): string {
  return e instanceof Error ? e.message || e.name : String(e);
}

/** Revisions handed out by an adapter are positive safe integers; anything else cannot match a key. */
export function isRevision(revision: number): boolean {
  return Number.isSafeInteger(revision) && revision > 0;
}

/** Runs `f` over `items` with at most `limit` calls in flight; results in input order. */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  limit: number,
  f: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
