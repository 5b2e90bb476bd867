import { RedisKv } from "../../src/adapters/kv/redis-kv.js";
import { changeStreamContract } from "../contract/change-stream.contract.js";
import { forBackend, testServers, uniqueName } from "../support/backends.js";

forBackend("redis", () => {
  changeStreamContract(
    "redis",
    async () => {
      const keyPrefix = `${uniqueName("idmap_stream")}:`;
      const open = () => RedisKv.open({ url: testServers.redisUrl, keyPrefix, timeoutMs: 5_000 });
      const admin = await open();
      return {
        client: open,
        forget: () => admin.trimChanges(0),
        cleanup: async () => {
          await admin.destroy();
          await admin.close();
        },
      };
    },
    { keepsEveryChange: true },
  );
});
