import { describe, expect, it } from "vitest";
import { JetStreamKv, MAX_NATS_KEY_BYTES } from "../../src/adapters/kv/jetstream-kv.js";
import { InvalidArgument } from "../../src/domain/errors.js";
import { forBackend, testServers, uniqueName } from "../support/backends.js";
import { hostileKeysSuite } from "../support/hostile.js";
import { backendEnv } from "../support/service.js";

// The shared server, on a store of this run's own, removed afterwards.
forBackend("jetstream", () => {
  hostileKeysSuite({ name: "jetstream", env: backendEnv("jetstream"), destroy: (kv) => (kv as JetStreamKv).destroy() });

  describe("jetstream adapter: keys NATS would drop the connection for", () => {
    it("refuses a key longer than the server's control line allows, and the connection stays up", async () => {
      const kv = await JetStreamKv.open({
        servers: testServers.natsUrl,
        bucket: uniqueName("idmap_hostile"),
        timeoutMs: 5_000,
      });
      try {
        const long = `ns/mac/${"=E8=AA=9E".repeat(1_000)}`;
        expect(long.length).toBeGreaterThan(MAX_NATS_KEY_BYTES);
        await expect(kv.get(long)).rejects.toBeInstanceOf(InvalidArgument);
        await expect(kv.getMany(["ok/key", long])).rejects.toBeInstanceOf(InvalidArgument);
        await expect(kv.create(long, new Uint8Array([1]))).rejects.toBeInstanceOf(InvalidArgument);
        const rev = await kv.create("ns/mac/still-connected", new Uint8Array([1]));
        expect((await kv.get("ns/mac/still-connected"))?.revision).toBe(rev);
      } finally {
        await kv.destroy();
        await kv.close();
      }
    });
  });
});
