import { EtcdKv } from "../../src/adapters/kv/etcd-kv.js";
import { changeStreamContract } from "../contract/change-stream.contract.js";
import { forBackend, uniqueName } from "../support/backends.js";
import { etcdServer } from "../support/servers.js";

forBackend("etcd", () => {
  changeStreamContract(
    "etcd",
    async () => {
      // Compaction is cluster-wide: this suite compacts a private etcd, never the shared one.
      const server = await etcdServer();
      const keyPrefix = `${uniqueName("idmap_stream")}/`;
      const open = () => EtcdKv.open({ endpoints: [server.endpoint], keyPrefix, timeoutMs: 5_000 });
      const admin = await open();
      return {
        client: open,
        forget: () => admin.compactHistory(),
        cleanup: async () => {
          await admin.close();
          await server.stop();
        },
      };
    },
    { keepsEveryChange: true },
  );
});
