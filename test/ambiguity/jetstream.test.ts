import { forBackend } from "../support/backends.js";
import { ambiguityDrills } from "../support/ambiguity.js";
import { natsServer } from "../support/servers.js";
import { jetstreamWriteLog } from "../support/write-log.js";

forBackend("jetstream", () => {
  ambiguityDrills({
    name: "jetstream",
    startServer: () => natsServer(),
    // History 10: the bucket keeps every write of a key, so a double apply would show.
    env: (port, bucket) => ({
      IDMAP_KV_BACKEND: "jetstream",
      IDMAP_NATS_URL: `nats://127.0.0.1:${port}`,
      IDMAP_KV_BUCKET: bucket,
      IDMAP_KV_HISTORY: "10",
    }),
    writeLog: (server, bucket) => jetstreamWriteLog(`nats://127.0.0.1:${server.port}`, bucket),
  });
});
