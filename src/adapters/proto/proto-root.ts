import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

/** The project's proto/ directory, from src/ (tsx) or dist/ (compiled) alike. */
export const PROTO_DIR = fileURLToPath(new URL("../../../proto/", import.meta.url));

let root: protobuf.Root | undefined;

/** The identitymap.v1 types, loaded once from the .proto files by protobufjs reflection. */
export function identityMapRoot(): protobuf.Root {
  root ??= protobuf.loadSync(`${PROTO_DIR}identitymap/v1/identity_map.proto`);
  return root;
}
