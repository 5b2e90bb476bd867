import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { JetStreamKv, MIN_SERVER_FOR_REPLICATED_CAS } from "../../src/adapters/kv/jetstream-kv.js";
import { ConfigError } from "../../src/domain/errors.js";
import { uniqueName } from "../support/backends.js";
import { CLUSTERS } from "../support/cluster.js";

const urls = CLUSTERS.jetstream.map((n) => n.url);

/**
 * On a NATS cluster older than MIN_SERVER_FOR_REPLICATED_CAS, conditional updates of a replicated
 * stream are not serialised: the service refuses such a bucket, and the second test shows why
 * (raw nats.js, no service code), so it starts failing the day the servers are upgraded.
 */
export function jetstreamReplicatedCasOnOldServers(version: string): void {
  describe(`jetstream cluster on nats-server ${version} (older than ${MIN_SERVER_FOR_REPLICATED_CAS})`, () => {
    it("refuses to open a bucket with three replicas, naming the setting", async () => {
      const bucket = uniqueName("idmap_ctest");
      const err = await JetStreamKv.open({ servers: urls, bucket, replicas: 3, timeoutMs: 5_000 }).catch((e) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.variable).toBe("IDMAP_KV_REPLICAS");
    });

    it("shows why: concurrent conditional updates of one key on a replicated stream are all accepted", async () => {
      const nc = await connect({ servers: urls });
      const bucket = uniqueName("idmap_ctest");
      const kv = await new Kvm(jetstream(nc)).create(bucket, { replicas: 3, history: 1, allow_direct: false });
      try {
        let acknowledged = 0;
        let kept = 0;
        // Bounded: a few rounds of 16 writers; the race shows in the first one on loopback.
        for (let round = 0; round < 5 && kept === acknowledged; round++) {
          const key = `counter${round}`;
          await kv.create(key, new TextEncoder().encode("0"));
          acknowledged = 0;
          await Promise.all(
            Array.from({ length: 16 }, async () => {
              for (let i = 0; i < 30; i++) {
                for (;;) {
                  const cur = (await kv.get(key))!;
                  try {
                    await kv.update(key, new TextEncoder().encode(String(Number(cur.string()) + 1)), cur.revision);
                    acknowledged++;
                    break;
                  } catch {
                    // a conflict: read again
                  }
                }
              }
            }),
          );
          kept = Number((await kv.get(key))!.string());
        }
        console.log(
          `[failure-figures] jetstream-cluster replicated CAS ${JSON.stringify({ version, acknowledged, kept })}`,
        );
        expect(kept).toBeLessThan(acknowledged);
      } finally {
        await kv.destroy();
        await nc.close();
      }
    }, 120_000);
  });
}

/** The version the cluster's first node reports. */
export async function natsClusterVersion(): Promise<string> {
  const nc = await connect({ servers: urls, timeout: 5_000 });
  try {
    return nc.info?.version ?? "unknown";
  } finally {
    await nc.close();
  }
}
