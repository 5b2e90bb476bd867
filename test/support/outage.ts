import type { FastifyInstance } from "fastify";
import type { IdentityKey } from "../../src/domain/identity-key.js";
import { keyPath } from "../../src/domain/key-path.js";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import { decodeBinding } from "../../src/app/bindings/binding-store.js";
import { postUpdates, type Timed } from "./service.js";
import { sleep } from "./servers.js";

/**
 * A stream of device-update batches as a registry would publish them, and the bookkeeping the
 * failure tests need: which updates were acknowledged (200 with a non-failed result), and how long
 * every request took. Each batch reports 8 new devices (Armis id, MAC, address) and moves 2 earlier
 * ones to a new address (a DHCP move: a new `partition:ip` id, so the map answers with a tombstone).
 */
export interface Sighting {
  readonly device_id: string;
  readonly ip: string;
  readonly partition: string;
  readonly mac: string;
  readonly hostname: string;
  readonly source: string;
  readonly metadata: { readonly armis_device_id: string };
}

export function sighting(run: string, k: number, generation: number): Sighting {
  const ip = `10.${generation % 250}.${(k >> 8) & 255}.${k & 255}`;
  const hex = (n: number) => (n & 255).toString(16).padStart(2, "0");
  return {
    device_id: `out:${ip}`,
    ip,
    partition: "out",
    mac: `02:00:00:${hex(k >> 16)}:${hex(k >> 8)}:${hex(k)}`,
    hostname: `host-${run}-${k}`,
    source: "armis",
    metadata: { armis_device_id: `${run}-${k}` },
  };
}

export function batch(run: string, b: number): Sighting[] {
  const fresh = Array.from({ length: 8 }, (_, j) => sighting(run, b * 8 + j, 0));
  const moves = b >= 2 ? [0, 1].map((j) => sighting(run, (b - 2) * 8 + j, b)) : [];
  return [...fresh, ...moves];
}

export interface RequestRecord {
  readonly batch: number;
  /** Start and end, ms since the publisher started. */
  readonly start: number;
  readonly end: number;
  readonly status: number;
  readonly code?: string;
  /** The error's reason, where the service gives one (`no_quorum`). */
  readonly reason?: string;
  /** Outcomes of a 200, in order. */
  readonly outcomes?: readonly string[];
}

export interface Acknowledged {
  readonly canonical: string;
  readonly mac: string;
}

/** Publishes batch after batch until stopped; a failed batch is retried (publishing is idempotent). */
export class Publisher {
  readonly requests: RequestRecord[] = [];
  /** Armis id → what the service acknowledged for it last. */
  readonly acked = new Map<string, Acknowledged>();
  ackedBatches = 0;
  private stopped = false;
  private done: Promise<void> | undefined;
  readonly t0 = performance.now();

  constructor(
    private readonly run: string,
    private readonly send: (
      updates: readonly Sighting[],
    ) => Promise<Timed<any> | { status: 0; body: unknown; ms: number }>,
    private readonly pauseAfterFailureMs = 100,
  ) {}

  static overRest(run: string, rest: () => FastifyInstance): Publisher {
    return new Publisher(run, (u) => postUpdates(rest(), u));
  }

  now(): number {
    return performance.now() - this.t0;
  }

  start(): void {
    this.done = (async () => {
      for (let b = 0; !this.stopped; ) {
        const updates = batch(this.run, b);
        const start = this.now();
        const r = await this.send(updates);
        const end = this.now();
        const error = (r.body as { error?: { code?: string; reason?: string } } | undefined)?.error;
        const code = error?.code;
        const reason = error?.reason;
        const outcomes =
          r.status === 200 ? (r.body as { results: { outcome: string }[] }).results.map((x) => x.outcome) : undefined;
        this.requests.push({
          batch: b,
          start,
          end,
          status: r.status,
          ...(code ? { code } : {}),
          ...(reason ? { reason } : {}),
          ...(outcomes ? { outcomes } : {}),
        });
        if (r.status === 200) {
          const results = (r.body as { results: { outcome: string; canonical_device_id: string | null }[] }).results;
          results.forEach((res, i) => {
            if (res.outcome === "failed" || res.outcome === "rejected" || !res.canonical_device_id) return;
            const u = updates[i]!;
            this.acked.set(u.metadata.armis_device_id, {
              canonical: res.canonical_device_id,
              mac: u.mac.toUpperCase(),
            });
          });
          this.ackedBatches++;
          b++;
        } else {
          await sleep(this.pauseAfterFailureMs);
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  /** Requests that began at or after `from` and ended by `to` (ms since start). */
  between(from: number, to: number): RequestRecord[] {
    return this.requests.filter((r) => r.start >= from && r.end <= to);
  }

  /** The first request after `from` that succeeded. */
  firstSuccessAfter(from: number): RequestRecord | undefined {
    return this.requests.find((r) => r.start >= from && r.status === 200);
  }
}

/**
 * Acknowledged updates the KV no longer holds as acknowledged: their Armis id or MAC binding is
 * absent or names another device. Reads the store directly (no cache), in one batch read.
 */
export async function missingAcknowledged(
  kv: IdentityKv,
  namespace: string,
  acked: ReadonlyMap<string, Acknowledged>,
): Promise<string[]> {
  const entries = [...acked.entries()];
  const keys: { armis: string; key: IdentityKey; canonical: string }[] = entries.flatMap(([armis, a]) => [
    { armis, key: { kind: "armis-id", value: armis } as IdentityKey, canonical: a.canonical },
    { armis, key: { kind: "mac", value: a.mac } as IdentityKey, canonical: a.canonical },
    { armis, key: { kind: "device-id", value: a.canonical } as IdentityKey, canonical: a.canonical },
  ]);
  const got = await kv.getMany(keys.map((k) => keyPath(namespace, k.key)));
  const missing = new Set<string>();
  keys.forEach((k, i) => {
    const e = got[i];
    if (!e || decodeBinding(e.value, e.revision).record.canonicalDeviceId !== k.canonical) missing.add(k.armis);
  });
  return [...missing];
}

/** Summary line for the docs: what a failure test measured. */
export function report(label: string, figures: Record<string, unknown>): void {
  console.log(`[failure-figures] ${label} ${JSON.stringify(figures)}`);
}
