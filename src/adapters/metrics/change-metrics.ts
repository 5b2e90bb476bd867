import { Counter, Gauge, type Registry } from "prom-client";

export type StreamTransport = "rest" | "grpc" | "webhook";
const TRANSPORTS: readonly StreamTransport[] = ["rest", "grpc", "webhook"];

/** What the change hub reports at scrape time. */
export interface StreamCensus {
  readonly followers: Readonly<Record<StreamTransport, number>>;
  readonly maxLagRevisions: number;
}

/**
 * The change stream's metrics (issue 15), on the app's registry: followers connected, events sent,
 * follower lag; and the webhooks' deliveries. Kept apart from PromMetrics so the stream's counters
 * live with the stream.
 */
export class ChangeStreamMetrics {
  private readonly sentTotal: Counter<"transport">;
  private readonly webhookTotal: Counter<"result">;
  private census: () => StreamCensus = () => ({ followers: { rest: 0, grpc: 0, webhook: 0 }, maxLagRevisions: 0 });

  constructor(registry: Registry) {
    this.sentTotal = new Counter({
      name: "identitymap_change_events_sent_total",
      help: "Binding changes sent to followers (SSE, gRPC WatchChanges, webhooks' follow), by transport",
      labelNames: ["transport"],
      registers: [registry],
    });
    for (const t of TRANSPORTS) this.sentTotal.inc({ transport: t }, 0);
    const self = this;
    new Gauge({
      name: "identitymap_change_followers",
      help: "Followers of the change stream connected to this instance, by transport",
      labelNames: ["transport"],
      registers: [registry],
      collect() {
        const c = self.census();
        for (const t of TRANSPORTS) this.set({ transport: t }, c.followers[t]);
      },
    });
    new Gauge({
      name: "identitymap_change_follower_lag_revisions",
      help: "How many revisions the furthest-behind follower is behind the newest this instance has seen",
      registers: [registry],
      collect() {
        this.set(self.census().maxLagRevisions);
      },
    });
    this.webhookTotal = new Counter({
      name: "identitymap_webhook_deliveries_total",
      help: "Webhook posts: delivered (2xx), retried (an error or a non-2xx answer), by result",
      labelNames: ["result"],
      registers: [registry],
    });
    for (const r of ["delivered", "retried"]) this.webhookTotal.inc({ result: r }, 0);
  }

  observe(census: () => StreamCensus): void {
    this.census = census;
  }

  sent(transport: StreamTransport, events: number): void {
    this.sentTotal.inc({ transport }, events);
  }

  webhook(result: "delivered" | "retried"): void {
    this.webhookTotal.inc({ result });
  }
}
