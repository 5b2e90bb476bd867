import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { PROTO_DIR } from "../../src/adapters/proto/proto-root.js";

/** A client's view of identitymap.v1.IdentityMapService, loaded from the .proto files like any client would. */
const def = protoLoader.loadSync(["identitymap/v1/identity_map_service.proto"], {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
});
const pkg = grpc.loadPackageDefinition(def) as unknown as {
  identitymap: { v1: { IdentityMapService: grpc.ServiceClientConstructor } };
};

export type Call = (method: string, request: object, token?: string) => Promise<any>;

export interface IdentityMapClient {
  readonly client: grpc.Client;
  readonly call: Call;
  close(): void;
}

export function identityMapClient(
  address: string,
  creds: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  options: grpc.ChannelOptions = {},
): IdentityMapClient {
  const client = new pkg.identitymap.v1.IdentityMapService(address, creds, options) as grpc.Client &
    Record<string, (...args: any[]) => any>;
  const call: Call = (method, request, token) =>
    new Promise((resolve, reject) => {
      const md = new grpc.Metadata();
      if (token) md.set("authorization", `Bearer ${token}`);
      client[method]!.call(
        client,
        request,
        md,
        { deadline: Date.now() + 10_000 },
        (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res)),
      );
    });
  return { client, call, close: () => client.close() };
}

/** The status code of a failed call (rejects when the call succeeded). */
export async function statusOf(
  p: Promise<unknown>,
): Promise<{ code: number; details: string; errorCode?: string; field?: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as grpc.ServiceError;
    const errorCode = err.metadata?.get("idmap-error-code")[0];
    const field = err.metadata?.get("idmap-error-field")[0];
    return {
      code: err.code,
      details: err.details,
      ...(errorCode ? { errorCode: String(errorCode) } : {}),
      ...(field ? { field: String(field) } : {}),
    };
  }
  throw new Error("expected the call to fail");
}
