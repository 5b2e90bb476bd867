import { JetStreamKv } from "../../src/adapters/kv/jetstream-kv.js";
import { changeStreamContract } from "../contract/change-stream.contract.js";
import { forBackend, testServers, uniqueName } from "../support/backends.js";

forBackend("jetstream", () => {
  changeStreamContract(
    "jetstream (NATS KV)",
    async () => {
      const bucket = uniqueName("idmap_stream");
      const open = () => JetStreamKv.open({ servers: testServers.natsUrl, bucket, timeoutMs: 5_000 });
      const admin = await open();
      return {
        client: open,
        // With history 1 the bucket holds each key's latest change only: once every key has changed
        // again, nothing from before is left, which is as far back as the bucket then remembers.
        forget: async (kv) => {
          for (const e of (await kv.list("")).entries) await kv.update(e.key, e.value, e.revision).catch(() => {});
        },
        cleanup: async () => {
          await admin.destroy();
          await admin.close();
        },
      };
    },
    { keepsEveryChange: false },
  );
});
