/**
 * The ceilings the front-ends are compared with, in a process of their own: a bare fastify server
 * answering GET /v1/canonical-devices/lookup?mac= and a bare grpc-js server answering
 * identitymap.v1.IdentityMapService/GetCanonicalDevice, both from an in-memory Map filled with the
 * service's own answers (same payloads, byte for byte). No schema, no auth, no metrics, no logger:
 * what fastify and grpc-js alone allow for this route on this machine.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import Fastify from "fastify";
import { PROTO_DIR } from "../../src/adapters/proto/proto-root.js";

interface Start {
  type: "start";
  /** MAC (as sent in the query) → the service's REST reply body. */
  rest: Record<string, unknown>;
  /** MAC (as sent in the request) → the service's gRPC reply message. */
  grpc: Record<string, unknown>;
}

const send = (m: object) => process.send?.(m);

process.once("message", (m: Start) => {
  start(m).then(
    (ports) => send({ type: "ready", ...ports }),
    (e: unknown) => {
      send({ type: "error", error: e instanceof Error ? e.message : String(e) });
      process.exit(1);
    },
  );
});

async function start(m: Start): Promise<{ restPort: number; grpcPort: number }> {
  const restReplies = new Map(Object.entries(m.rest));
  const f = Fastify({ logger: false });
  f.get("/v1/canonical-devices/lookup", async (req, reply) => {
    const r = restReplies.get((req.query as { mac?: string }).mac ?? "");
    if (!r)
      return reply
        .status(404)
        .send({ error: { code: "not_found", message: "no device matches the given identities" } });
    return r;
  });
  await f.listen({ host: "127.0.0.1", port: 0 });
  const addr = f.server.address();
  const restPort = typeof addr === "object" && addr ? addr.port : 0;

  // The service's loader settings (grpc-server.ts), so both encode the same message the same way.
  const def = protoLoader.loadSync(["identitymap/v1/identity_map_service.proto"], {
    keepCase: true,
    longs: Number,
    enums: Number,
    defaults: true,
    oneofs: true,
    includeDirs: [PROTO_DIR],
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    identitymap: { v1: { IdentityMapService: grpc.ServiceClientConstructor } };
  };
  const grpcReplies = new Map(Object.entries(m.grpc));
  const server = new grpc.Server();
  server.addService(pkg.identitymap.v1.IdentityMapService.service, {
    GetCanonicalDevice: (
      call: grpc.ServerUnaryCall<{ identity_keys: { value: string }[] }, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      const r = grpcReplies.get(call.request.identity_keys[0]?.value ?? "");
      callback(null, r ?? { found: false, revision: 0, hydrated: false });
    },
  });
  const grpcPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );

  const stop = () => {
    server.forceShutdown();
    void f.close().finally(() => process.exit(0));
  };
  process.on("message", (msg: { type: string }) => msg.type === "stop" && stop());
  process.on("disconnect", stop);
  return { restPort, grpcPort };
}
