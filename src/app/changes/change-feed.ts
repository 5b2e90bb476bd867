import { isLive, type Revision } from "../../domain/binding.js";
import { parseKeyPath } from "../../domain/key-path.js";
import type { Clock } from "../../ports/clock.js";
import type {
  ChangeEvent,
  ChangeFeedUseCase,
  ChangeSink,
  FollowerTransport,
  Following,
  SnapshotEntry,
  SnapshotStream,
} from "../../ports/changes.js";
import type { IdentityKv, KvChange } from "../../ports/identity-kv.js";
import type { Logger } from "../../ports/logger.js";
import { decodeBinding } from "../bindings/binding-store.js";
import { ChangeHub, type HubStats } from "./change-hub.js";

export interface ChangeFeedOptions {
  readonly namespace: string;
  readonly bufferSize: number;
  readonly heartbeatMs: number;
  /** Bindings per snapshot page (one store read each). */
  readonly pageSize?: number;
  readonly onSent?: (transport: FollowerTransport, events: number) => void;
  /** See HubOptions.coalesceMs. */
  readonly coalesceMs?: number;
}

/**
 * The change stream of the map the service resolves on (the KV with the flag on, the relational
 * binding table otherwise): snapshots read page by page, follows served by the instance's hub.
 * Revisions are the store's own, so every instance on one store gives the same stream.
 */
export class ChangeFeed implements ChangeFeedUseCase {
  private readonly hub: ChangeHub;
  private readonly prefix: string;
  readonly heartbeatMs: number;

  constructor(
    private readonly kv: IdentityKv,
    private readonly clock: Clock,
    log: Logger,
    private readonly options: ChangeFeedOptions,
  ) {
    this.prefix = `${options.namespace}/`;
    this.heartbeatMs = options.heartbeatMs;
    this.hub = new ChangeHub(kv, this.prefix, (c) => this.decode(c), log, {
      bufferSize: options.bufferSize,
      heartbeatMs: options.heartbeatMs,
      ...(options.onSent ? { onSent: options.onSent } : {}),
      coalesceMs: options.coalesceMs ?? 5,
    });
  }

  /** Starts following the store now, so the first follower is served from memory. */
  start(): Promise<void> {
    return this.hub.start();
  }

  stop(): Promise<void> {
    return this.hub.stop();
  }

  stats(): HubStats {
    return this.hub.stats();
  }

  async head(): Promise<Revision> {
    await this.hub.start();
    return this.hub.head;
  }

  async snapshot(): Promise<SnapshotStream> {
    const scan = await this.kv.scan(this.prefix, this.options.pageSize ?? 1_000);
    const now = this.clock.nowMs();
    const namespace = this.options.namespace;
    async function* pages(): AsyncGenerator<readonly SnapshotEntry[]> {
      for await (const page of scan.pages) {
        const out: SnapshotEntry[] = [];
        for (const e of page) {
          const path = parsePath(e.key, namespace);
          if (!path) continue;
          const b = decodeBinding(e.value, e.revision);
          // Expired weak keys read as absent everywhere; compaction deletes them later.
          if (isLive(b, now)) out.push({ key: path, record: b.record, revision: e.revision });
        }
        if (out.length > 0) yield out;
      }
    }
    return { revision: scan.revision, pages: pages() };
  }

  follow(since: Revision, sink: ChangeSink, transport: FollowerTransport, field?: string): Promise<Following> {
    return this.hub.follow(since, sink, transport, field);
  }

  private decode(c: KvChange): ChangeEvent | null {
    const key = parsePath(c.key, this.options.namespace);
    if (!key) return null;
    if (c.value === null) return { revision: c.revision, key, operation: "delete", record: null };
    return { revision: c.revision, key, operation: "put", record: decodeBinding(c.value, c.revision).record };
  }
}

/** The identity key of a binding path of this namespace; null for anything else under the prefix. */
function parsePath(path: string, namespace: string) {
  try {
    const p = parseKeyPath(path);
    return p.namespace === namespace ? p.key : null;
  } catch {
    return null;
  }
}
