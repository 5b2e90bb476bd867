import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGrpcServer, type GrpcServer } from "../../src/adapters/grpc/grpc-server.js";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import type { App } from "../../src/app/container.js";
import { testApp } from "../support/app.js";
import { identityMapClient, type IdentityMapClient } from "../support/grpc.js";
import { until } from "../support/servers.js";

const READER = "reader-stream-5d8e1f4c";
const WRITER = "writer-stream-0a9b3c77";
const kv = new MemoryKv();
let app: App;
let server: GrpcServer;
let c: IdentityMapClient;

beforeAll(async () => {
  ({ app } = await testApp(
    { IDMAP_GRPC_PORT: "0", IDMAP_AUTH_TOKENS: `${READER}:reader,${WRITER}:writer`, IDMAP_CHANGES_HEARTBEAT: "200ms" },
    kv,
  ));
  server = await startGrpcServer(app);
  c = identityMapClient(`127.0.0.1:${server.port}`);
});
afterAll(async () => {
  c.close();
  await server.close();
  await app.close();
});

type Stream = grpc.ClientReadableStream<any>;
const client = () => c.client as grpc.Client & Record<string, (req: object, md: grpc.Metadata) => Stream>;

function open(method: "WatchChanges" | "GetSnapshot", req: object, token?: string) {
  const md = new grpc.Metadata();
  if (token) md.set("authorization", `Bearer ${token}`);
  const stream = client()[method]!.call(c.client, req, md);
  const messages: any[] = [];
  let status: grpc.StatusObject | undefined;
  let error: grpc.ServiceError | undefined;
  stream.on("data", (m) => messages.push(m));
  stream.on("error", (e: grpc.ServiceError) => (error = e));
  stream.on("status", (s: grpc.StatusObject) => (status = s));
  const ended = new Promise<void>((r) => stream.on("close", () => r()));
  return {
    messages,
    stream,
    ended,
    get error() {
      return error;
    },
    get status() {
      return status;
    },
    changes: () => messages.filter((m) => m.event === "change").map((m) => m.change),
  };
}

const devices = (tag: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    device_id: `grpc-${tag}-${i}`,
    mac: `02:11:${tag}:00:00:${i.toString(16).padStart(2, "0")}`,
    source: "agent",
  }));

describe("gRPC GetSnapshot and WatchChanges", () => {
  it("a reader takes a snapshot, watches from its revision, and resumes after a cut without gap or repeat", async () => {
    await app.publish.publish(devices("aa", 5), "test");
    const snap = open("GetSnapshot", {}, READER);
    await snap.ended;
    expect(snap.error).toBeUndefined();
    const last = snap.messages[snap.messages.length - 1];
    expect(last.last).toBe(true);
    const bindings = snap.messages.flatMap((m) => m.bindings);
    expect(Number(last.count)).toBe(bindings.length);
    expect(bindings.filter((b) => b.key.kind === "IDENTITY_KIND_MAC")).toHaveLength(5);
    const revision = Number(last.revision);

    const reference = open("WatchChanges", { since: revision }, READER);
    const first = open("WatchChanges", { since: revision }, READER);
    const batch1 = devices("bb", 10);
    for (const d of batch1) await app.publish.publish([d], "test");
    await until("the first watcher's changes", () => first.changes().length >= 4, 10_000);
    first.stream.cancel();
    await first.ended;
    const seenFirst = first.changes();
    const cursor = Number(seenFirst[seenFirst.length - 1].revision);
    await app.publish.publish(devices("cc", 10), "test");
    const resumed = open("WatchChanges", { since: cursor }, READER);
    await until("the reference to see all 40 new bindings", () => reference.changes().length >= 40, 10_000);
    const final = Number(reference.changes().at(-1).revision);
    await until(
      "the resumed watcher to catch up",
      () => Number(resumed.changes().at(-1)?.revision ?? 0) >= final,
      10_000,
    );
    reference.stream.cancel();
    resumed.stream.cancel();
    const ids = (list: any[]) => list.map((x) => `${x.revision}:${x.key.kind}:${x.key.value}:${x.operation}`);
    expect([...ids(seenFirst), ...ids(resumed.changes())]).toEqual(ids(reference.changes()));
    const put = reference.changes().find((x) => x.key.kind === "IDENTITY_KIND_MAC");
    expect(put.operation).toBe("CHANGE_OPERATION_PUT");
    expect(put.record.canonical_device_id).toMatch(/^grpc-/);
    // Heartbeats say the watcher is current, with the newest revision.
    await until(
      "a heartbeat",
      () => resumed.messages.some((m) => m.event === "heartbeat" && m.heartbeat.current),
      5_000,
    );
  });

  it("a revision the store no longer remembers is OUT_OF_RANGE, with the revision to re-snapshot at", async () => {
    const before = (await kv.resumePoint(0)).head;
    await app.publish.publish(devices("dd", 3), "test");
    kv.trimChanges(0);
    const w = open("WatchChanges", { since: before }, READER);
    await w.ended;
    expect(w.error?.code).toBe(grpc.status.OUT_OF_RANGE);
    expect(w.error?.metadata.get("idmap-error-code")[0]).toBe("revision_compacted");
    expect(Number(w.error?.metadata.get("idmap-error-revision")[0])).toBeGreaterThan(before);
  });

  it("no token may not watch or snapshot; a writer may", async () => {
    for (const method of ["WatchChanges", "GetSnapshot"] as const) {
      const anonymous = open(method, { from_now: true });
      await anonymous.ended;
      expect(anonymous.error?.code, method).toBe(grpc.status.UNAUTHENTICATED);
      const wrong = open(method, { from_now: true }, "not-a-configured-token");
      await wrong.ended;
      expect(wrong.error?.code, method).toBe(grpc.status.UNAUTHENTICATED);
    }
    const w = open("WatchChanges", { from_now: true }, WRITER);
    await until("a heartbeat", () => w.messages.some((m) => m.event === "heartbeat"), 5_000);
    w.stream.cancel();
  });
});
