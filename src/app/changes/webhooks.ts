import { createHash, createHmac } from "node:crypto";
import type { Revision } from "../../domain/binding.js";
import { RevisionCompacted } from "../../domain/errors.js";
import type { ChangeEvent, ChangeFeedUseCase, ChangeSink, Following } from "../../ports/changes.js";
import type { DeviceStore } from "../../ports/device-store.js";
import type { Logger } from "../../ports/logger.js";
import { WebhookClassifier, type WebhookEvent } from "./webhook-events.js";

export interface WebhookOptions {
  readonly urls: readonly string[];
  readonly secret: string;
  /** Longest wait between two attempts of one post. */
  readonly retryMaxMs: number;
  /** First wait after a failed post; doubles up to retryMaxMs. */
  readonly retryInitialMs?: number;
  /** Events waiting for one endpoint beyond which the dispatcher stops reading the stream until it drains. */
  readonly maxQueue?: number;
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
  readonly onDelivery?: (result: "delivered" | "retried") => void;
}

interface Endpoint {
  readonly url: string;
  /** The job-state name its cursor is saved under. */
  readonly job: string;
  readonly queue: WebhookEvent[];
  /** Every change through this revision has been looked at for this endpoint. */
  through: Revision;
  /** The cursor last saved. */
  saved: Revision;
  sending: boolean;
  attempt: number;
}

/** The signature a receiver checks: HMAC-SHA256 over `<timestamp>.<body>` with the shared secret, hex. */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

/**
 * Webhooks for systems that cannot hold a stream open: merges (tombstones), take-overs and
 * quarantines are posted to every configured endpoint as signed JSON, in revision order, each
 * retried with backoff until the endpoint answers 2xx. At least once: an endpoint's cursor (the
 * revision through which it has everything) is saved in the relational store after each delivery,
 * and a restart follows the stream again from the oldest cursor, so a post may come twice (the
 * `idempotency-key` header, the change's revision, tells the receiver).
 */
export class WebhookDispatcher {
  private readonly endpoints: Endpoint[];
  private readonly classifier = new WebhookClassifier();
  private following: Following | undefined;
  private stopped = false;
  private paused = false;
  private saveTimer: NodeJS.Timeout | undefined;
  private refollowTimer: NodeJS.Timeout | undefined;
  private readonly wakers = new Set<() => void>();

  constructor(
    private readonly feed: ChangeFeedUseCase,
    private readonly devices: DeviceStore,
    private readonly log: Logger,
    private readonly options: WebhookOptions,
  ) {
    this.endpoints = options.urls.map((url) => ({
      url,
      job: `webhook:${createHash("sha256").update(url).digest("hex").slice(0, 16)}`,
      queue: [],
      through: 0,
      saved: 0,
      sending: false,
      attempt: 0,
    }));
  }

  /**
   * Learns which devices are provisional and which MACs are quarantined from a snapshot (a take-over
   * is a provisional device becoming an asserted one), then follows from the oldest saved cursor,
   * or from the snapshot for an endpoint never served.
   */
  async start(): Promise<void> {
    const snap = await this.feed.snapshot();
    for await (const page of snap.pages) for (const e of page) this.classifier.seed(e.key, e.record);
    for (const ep of this.endpoints) {
      const saved = await this.devices.getJobState(ep.job);
      ep.through = saved !== null && /^\d+$/.test(saved) ? Number(saved) : snap.revision;
      ep.saved = ep.through;
    }
    await this.follow();
    this.saveTimer = setInterval(() => void this.saveAll(), 5_000);
    this.saveTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.saveTimer) clearInterval(this.saveTimer);
    if (this.refollowTimer) clearTimeout(this.refollowTimer);
    this.following?.close();
    for (const wake of this.wakers) wake();
    await this.saveAll();
  }

  /** Events waiting, per endpoint (tests, logs). */
  pending(): Record<string, number> {
    return Object.fromEntries(this.endpoints.map((e) => [e.url, e.queue.length]));
  }

  private async follow(): Promise<void> {
    const since = Math.min(...this.endpoints.map((e) => e.through));
    const sink: ChangeSink = {
      changes: (batch) => this.take(batch),
      heartbeat: (head, current) => {
        if (!current) return;
        for (const ep of this.endpoints) if (ep.queue.length === 0) ep.through = Math.max(ep.through, head);
      },
      end: (error) => this.refollow(error),
    };
    try {
      this.following = await this.feed.follow(since, sink, "webhook");
    } catch (e) {
      if (!(e instanceof RevisionCompacted)) throw e;
      // The store forgot changes no endpoint has seen yet: they cannot be sent. Said loudly, then on from now.
      this.log.error(
        { since, newest: e.revision, endpoints: this.endpoints.map((x) => x.url) },
        "webhooks: changes after the saved cursor are no longer in the store; continuing from the newest",
      );
      for (const ep of this.endpoints) ep.through = Math.max(ep.through, e.revision);
      this.following = await this.feed.follow(e.revision, sink, "webhook");
    }
  }

  private refollow(error: Error): void {
    this.following = undefined;
    if (this.stopped) return;
    this.log.warn({ err: error.message }, "webhooks: the change stream ended; following again");
    this.refollowTimer = setTimeout(() => {
      this.follow().catch((e) => this.refollow(e instanceof Error ? e : new Error(String(e))));
    }, 1_000);
  }

  private take(batch: readonly ChangeEvent[]): void {
    for (const change of batch) {
      const event = this.classifier.classify(change);
      for (const ep of this.endpoints) {
        if (change.revision <= ep.through) continue;
        if (event) ep.queue.push(event);
        ep.through = change.revision;
      }
    }
    for (const ep of this.endpoints) void this.pump(ep);
    const limit = this.options.maxQueue ?? 100_000;
    if (!this.paused && this.endpoints.some((e) => e.queue.length > limit)) {
      // An endpoint down for long: stop reading the stream (the store keeps it) instead of growing without bound.
      this.paused = true;
      this.following?.close();
      this.following = undefined;
      this.log.warn({ limit }, "webhooks: an endpoint is far behind; pausing the stream until it catches up");
    }
  }

  private async pump(ep: Endpoint): Promise<void> {
    if (ep.sending) return;
    ep.sending = true;
    try {
      while (!this.stopped && ep.queue.length > 0) {
        const event = ep.queue[0]!;
        if (await this.post(ep, event)) {
          ep.queue.shift();
          ep.attempt = 0;
          this.options.onDelivery?.("delivered");
          await this.save(ep);
          this.maybeResume();
        } else {
          this.options.onDelivery?.("retried");
          await this.sleep(this.backoff(ep.attempt++));
        }
      }
    } finally {
      ep.sending = false;
    }
  }

  private maybeResume(): void {
    if (!this.paused || this.stopped) return;
    const limit = this.options.maxQueue ?? 100_000;
    if (this.endpoints.some((e) => e.queue.length > limit / 2)) return;
    this.paused = false;
    void this.follow().catch((e) => this.refollow(e instanceof Error ? e : new Error(String(e))));
  }

  private async post(ep: Endpoint, event: WebhookEvent): Promise<boolean> {
    const body = JSON.stringify(event);
    const timestamp = String(Date.now());
    try {
      const res = await (this.options.fetch ?? globalThis.fetch)(ep.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "idempotency-key": String(event.revision),
          "x-identitymap-event": event.type,
          "x-identitymap-timestamp": timestamp,
          "x-identitymap-signature": signWebhook(this.options.secret, timestamp, body),
        },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
      });
      await res.arrayBuffer().catch(() => {});
      if (res.ok) return true;
      this.log.warn({ url: ep.url, status: res.status, revision: event.revision }, "webhook refused; will retry");
    } catch (e) {
      this.log.warn({ url: ep.url, err: String(e), revision: event.revision }, "webhook post failed; will retry");
    }
    return false;
  }

  /** The endpoint has everything through its cursor: the last change looked at, or just before its oldest wait. */
  private cursor(ep: Endpoint): Revision {
    return ep.queue.length === 0 ? ep.through : ep.queue[0]!.revision - 1;
  }

  private async save(ep: Endpoint): Promise<void> {
    const cursor = this.cursor(ep);
    if (cursor <= ep.saved) return;
    try {
      await this.devices.putJobState(ep.job, String(cursor), Date.now());
      ep.saved = cursor;
    } catch (e) {
      this.log.warn({ err: String(e) }, "webhooks: cannot save the cursor yet");
    }
  }

  private async saveAll(): Promise<void> {
    for (const ep of this.endpoints) await this.save(ep);
  }

  private backoff(attempt: number): number {
    const base = Math.min(this.options.retryMaxMs, (this.options.retryInitialMs ?? 500) * 2 ** attempt);
    return Math.round(base * (0.8 + 0.4 * Math.random()));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(t);
        this.wakers.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }
}

/**
 * Starts the dispatcher when IDMAP_WEBHOOK_URLS names endpoints (`serve` only); a start that fails
 * (a store down) is tried again every few seconds. Returns how to stop it.
 */
export function startWebhooks(
  parts: {
    readonly changes: ChangeFeedUseCase;
    readonly devices: DeviceStore;
    readonly log: Logger;
    readonly streamMetrics: { webhook(result: "delivered" | "retried"): void };
  },
  settings: Omit<WebhookOptions, "onDelivery">,
): { stop(): Promise<void> } | null {
  if (settings.urls.length === 0) return null;
  const dispatcher = new WebhookDispatcher(parts.changes, parts.devices, parts.log, {
    ...settings,
    onDelivery: (r) => parts.streamMetrics.webhook(r),
  });
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const attempt = () => {
    dispatcher.start().then(
      () => parts.log.info({ endpoints: settings.urls.length }, "webhooks: following the change stream"),
      (e: unknown) => {
        if (stopped) return;
        parts.log.warn({ err: String(e) }, "webhooks: cannot start yet; retrying");
        retry = setTimeout(attempt, 5_000);
      },
    );
  };
  attempt();
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(retry);
      await dispatcher.stop();
    },
  };
}
