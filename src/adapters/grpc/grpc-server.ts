import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { CallAuthenticator, IdentityMapApi, Principal, Role, TlsMaterial } from "../../ports/identity-service.js";
import { InvalidArgument } from "../../domain/errors.js";
import { kindFromWire } from "../../domain/identity-kind.js";
import { withDeadline } from "../deadline.js";
import { describeError } from "../error-status.js";
import { PROTO_DIR } from "../proto/proto-root.js";
import {
  auditReply,
  deviceUpdate,
  lookupReply,
  lookupRequest,
  publishReply,
  referenceLookupRequest,
  resolveReply,
  type WireKey,
  type WireLookup,
  type WireUpdate,
  wireKey,
} from "./grpc-messages.js";

export interface GrpcOptions {
  /** Defaults to one built from the app's config (IDMAP_AUTH_TOKENS, IDMAP_MTLS_ROLES). */
  readonly authenticator?: CallAuthenticator;
  /** Defaults to the files named in the app's config; null serves plaintext. */
  readonly tls?: TlsMaterial | null;
}

export interface GrpcServer {
  readonly port: number;
  close(): Promise<void>;
}

/** proto-loader settings: field names as in the .proto (like the REST JSON), enums and int64 as numbers. */
const LOADER: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: Number,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

interface Services {
  readonly identityMap: grpc.ServiceDefinition;
  readonly core: grpc.ServiceDefinition;
}

let services: Services | undefined;

function loadServices(): Services {
  if (services) return services;
  const def = protoLoader.loadSync(["identitymap/v1/identity_map_service.proto", "core/core_service.proto"], LOADER);
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    identitymap: { v1: { IdentityMapService: grpc.ServiceClientConstructor } };
    core: { CoreService: grpc.ServiceClientConstructor };
  };
  services = {
    identityMap: tolerant(pkg.identitymap.v1.IdentityMapService.service),
    core: tolerant(pkg.core.CoreService.service),
  };
  return services;
}

/** A request body that did not decode; the handler answers INVALID_ARGUMENT for it. */
class Undecodable {
  constructor(readonly reason: string) {}
}

/**
 * grpc-js answers INTERNAL when a request does not decode, as if the service had failed. Decoding
 * never throws here: a bad body reaches the handler as Undecodable, which refuses it as the
 * caller's mistake (INVALID_ARGUMENT), like malformed JSON on REST.
 */
function tolerant(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(service)) {
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch (e) {
          return new Undecodable(e instanceof Error ? e.message : String(e));
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

/**
 * The gRPC front-end: identitymap.v1.IdentityMapService and, for the reference's clients,
 * core.CoreService/GetCanonicalDevice. Handlers decode, call the same services as REST, encode;
 * credentials go through the shared Authenticator, errors through the one status table.
 */
export async function startGrpcServer(app: IdentityMapApi, options: GrpcOptions = {}): Promise<GrpcServer> {
  const { config } = app;
  const auth = options.authenticator ?? app.authenticator;
  const tls = options.tls !== undefined ? options.tls : app.loadTls();
  const { identityMap, core } = loadServices();

  const unary =
    <Req, Res>(need: Role, handle: (req: Req, who: Principal) => Promise<Res>): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      const run = async () => {
        const who = auth.authorize(credentials(call), need);
        if (call.request instanceof Undecodable)
          throw new InvalidArgument("request", `not a valid protobuf message (${call.request.reason})`);
        return withDeadline(handle(call.request, who), config.requestTimeoutMs);
      };
      run().then(
        (res) => callback(null, res),
        (e: unknown) => callback(toStatus(e, app, call.getPath())),
      );
    };

  // proto3 cannot say "at least one"; the size limit itself is the services' to enforce.
  const nonEmpty = (field: string, size: number) => {
    if (size === 0) throw new InvalidArgument(field, "at least one item is required");
  };

  const server = new grpc.Server({ "grpc.max_receive_message_length": config.bodyLimitBytes });
  server.addService(identityMap, {
    GetCanonicalDevice: unary<WireLookup, unknown>("reader", async (req, who) =>
      lookupReply(await app.lookup.lookup({ ...lookupRequest(req), mayWrite: who.role === "writer" })),
    ),
    BatchGetCanonicalDevices: unary<{ lookups: WireLookup[]; namespace: string }, unknown>(
      "reader",
      async (req, who) => {
        nonEmpty("lookups", req.lookups.length);
        const results = await app.lookup.lookupMany(
          req.lookups.map((l) => ({ ...lookupRequest(l, req.namespace), mayWrite: who.role === "writer" })),
        );
        return { results: results.map(lookupReply) };
      },
    ),
    PublishDeviceUpdates: unary<{ updates: WireUpdate[] }, unknown>("writer", async (req, who) => {
      nonEmpty("updates", req.updates.length);
      return { results: (await app.publish.publish(req.updates.map(deviceUpdate), who.actor)).map(publishReply) };
    }),
    ResolveDeviceUpdates: unary<{ updates: WireUpdate[]; explain: boolean }, unknown>("reader", async (req) => {
      nonEmpty("updates", req.updates.length);
      const results = await app.publish.resolve(req.updates.map(deviceUpdate), { explain: req.explain });
      return { results: results.map(resolveReply) };
    }),
    GetDeviceHistory: unary<{ device_id: string; limit: number; before: number }, unknown>("reader", async (req) => {
      const page = await app.history({
        deviceId: req.device_id,
        ...(req.limit ? { limit: req.limit } : {}),
        ...(req.before ? { before: req.before } : {}),
      });
      return { device_id: req.device_id, entries: page.entries.map(auditReply), next: page.next ?? 0 };
    }),
    ListQuarantinedIdentifiers: unary<unknown, unknown>("reader", async () => ({
      identifiers: (await app.quarantine.list()).map((q) => ({
        key: wireKey(q.key),
        quarantined_since_unix_millis: q.quarantinedSinceMs,
        candidates: [...q.candidates],
      })),
    })),
    ReleaseQuarantinedIdentifier: unary<{ key?: WireKey | null }, unknown>("writer", async (req, who) => {
      const kind = req.key ? kindFromWire(req.key.kind) : undefined;
      if (!req.key || kind === undefined) throw new InvalidArgument("key.kind", "an identity kind is required");
      await app.quarantine.release(kind, req.key.value, who.actor);
      return { released: true };
    }),
  });
  server.addService(core, {
    GetCanonicalDevice: unary<WireLookup, unknown>("reader", async (req, who) => {
      const r = referenceLookupRequest(req);
      return r
        ? lookupReply(await app.lookup.lookup({ ...r, mayWrite: who.role === "writer" }))
        : { found: false, revision: 0, hydrated: false };
    }),
  });

  const creds = tls
    ? grpc.ServerCredentials.createSsl(
        tls.ca ?? null,
        [{ cert_chain: tls.cert, private_key: tls.key }],
        tls.ca !== undefined,
      )
    : grpc.ServerCredentials.createInsecure();
  const host = config.host.includes(":") && !config.host.startsWith("[") ? `[${config.host}]` : config.host;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${config.grpcPort}`, creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 5_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

function credentials(call: grpc.ServerUnaryCall<unknown, unknown>) {
  const header = call.metadata.get("authorization")[0];
  return {
    authorization: typeof header === "string" ? header : undefined,
    peerSubject: call.getAuthContext()?.sslPeerCertificate?.subject,
    transport: "grpc" as const,
    peer: call.getPeer(),
  };
}

/** The status for a thrown error, from the one table; trailers carry the REST error code and field. */
function toStatus(e: unknown, app: IdentityMapApi, path: string): Partial<grpc.StatusObject> {
  const { status, body } = describeError(e);
  if (status.http >= 500)
    app.log.error(
      { err: String(e), cause: String((e as { cause?: unknown }).cause ?? ""), method: path },
      "gRPC call failed",
    );
  const metadata = new grpc.Metadata();
  metadata.set("idmap-error-code", body.error.code);
  if (body.error.field) metadata.set("idmap-error-field", body.error.field);
  if (body.error.reason) metadata.set("idmap-error-reason", body.error.reason);
  return { code: status.grpc, details: body.error.message, metadata };
}
