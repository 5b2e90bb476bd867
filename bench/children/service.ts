/**
 * The service under test, in a process of its own (the load generator runs in the parent, so each
 * gets one of the machine's cores). Configured by the IDMAP_* environment the parent passes; answers
 * `ready` with its ports and stops on `stop`.
 */
import { loadConfig } from "../../src/app/config.js";
import { startServer } from "../../src/app/server.js";

const send = (m: object) => process.send?.(m);

try {
  const server = await startServer(loadConfig(process.env));
  process.on("message", (m: { type: string }) => {
    if (m.type !== "stop") return;
    server.close().finally(() => process.exit(0));
  });
  process.on("disconnect", () => void server.close().finally(() => process.exit(0)));
  send({ type: "ready", restPort: server.restPort, grpcPort: server.grpcPort });
} catch (e) {
  send({ type: "error", error: e instanceof Error ? e.message : String(e) });
  process.exit(1);
}
