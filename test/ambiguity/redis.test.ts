import { forBackend } from "../support/backends.js";
import { ambiguityDrills } from "../support/ambiguity.js";
import { redisServer } from "../support/servers.js";
import { redisWriteLog } from "../support/write-log.js";

forBackend("redis", () => {
  ambiguityDrills({
    name: "redis",
    startServer: () => redisServer(true),
    env: (port, bucket) => ({
      IDMAP_KV_BACKEND: "redis",
      IDMAP_REDIS_URL: `redis://127.0.0.1:${port}`,
      IDMAP_KV_BUCKET: bucket,
    }),
    writeLog: (server, bucket) => redisWriteLog(`redis://127.0.0.1:${server.port}`, `${bucket}:`),
  });
});
