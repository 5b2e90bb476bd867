import { forBackend } from "../support/backends.js";
import { ambiguityDrills } from "../support/ambiguity.js";
import { etcdServer } from "../support/servers.js";
import { etcdWriteLog } from "../support/write-log.js";

forBackend("etcd", () => {
  ambiguityDrills({
    name: "etcd",
    startServer: () => etcdServer(),
    env: (port, bucket) => ({
      IDMAP_KV_BACKEND: "etcd",
      IDMAP_ETCD_ENDPOINTS: `http://127.0.0.1:${port}`,
      IDMAP_KV_BUCKET: bucket,
    }),
    writeLog: (server, bucket) => etcdWriteLog(`http://127.0.0.1:${server.port}`, `${bucket}/`),
  });
});
