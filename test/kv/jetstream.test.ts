import { describe, expect, it } from "vitest";
import { JetStreamKv } from "../../src/adapters/kv/jetstream-kv.js";
import { InvalidArgument, KvUnavailable } from "../../src/domain/errors.js";
import { kvContract } from "../contract/kv.contract.js";
import { destroyAfter, forBackend, testServers, uniqueName } from "../support/backends.js";

forBackend("jetstream", () => {
  const bucket = uniqueName("idmap_test");
  const open = () => JetStreamKv.open({ servers: testServers.natsUrl, bucket, timeoutMs: 5_000 });
  kvContract("jetstream (NATS KV)", destroyAfter(open), { secondClient: () => open() });

  describe("jetstream specifics", () => {
    it("refuses keys NATS cannot hold before calling the server", async () => {
      const kv = await JetStreamKv.open({
        servers: testServers.natsUrl,
        bucket: uniqueName("idmap_test"),
        timeoutMs: 5_000,
      });
      try {
        for (const key of ["a..b", ".a", "a.", "a:b", "a b", "", "a*", "a>"]) {
          await expect(kv.get(key), key).rejects.toBeInstanceOf(InvalidArgument);
          await expect(kv.create(key, new Uint8Array([1])), key).rejects.toBeInstanceOf(InvalidArgument);
        }
        await expect(kv.getMany(["ok/key", "bad..key"])).rejects.toBeInstanceOf(InvalidArgument);
      } finally {
        await kv.destroy();
        await kv.close();
      }
    });

    it("reports an unreachable server as KvUnavailable", async () => {
      await expect(
        JetStreamKv.open({ servers: "nats://127.0.0.1:1", bucket, timeoutMs: 2_000 }),
      ).rejects.toBeInstanceOf(KvUnavailable);
    });
  });
});
