import { describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import type { ChangeEvent } from "../../src/ports/changes.js";
import { testApp } from "../support/app.js";
import { until } from "../support/servers.js";

describe("the change stream with the flag off", () => {
  it("follows the map resolution runs on (the relational binding table), and the KV stays untouched", async () => {
    const kv = new MemoryKv();
    const { app } = await testApp({ CANONICAL_IDENTITY_MAP_ENABLED: "off" }, kv);
    try {
      const seen: ChangeEvent[] = [];
      const following = await app.changes.follow(
        await app.changes.head(),
        { changes: (b) => seen.push(...b), heartbeat: () => {}, end: (e) => seen.push(e as never) },
        "rest",
      );
      await app.publish.publish([{ device_id: "off-1", mac: "02:00:00:0f:f0:01", source: "agent" }], "test");
      await until("the binding table's changes", () => seen.some((e) => e.key.kind === "mac"), 5_000);
      expect(seen.map((e) => `${e.operation} ${e.key.kind} ${e.key.value} ${e.record?.canonicalDeviceId}`)).toEqual([
        "put device-id off-1 off-1",
        "put mac 02:00:00:0F:F0:01 off-1",
      ]);
      const snap = await app.changes.snapshot();
      const keys: string[] = [];
      for await (const page of snap.pages) keys.push(...page.map((e) => e.key.value));
      expect(keys).toEqual(["off-1", "02:00:00:0F:F0:01"]);
      expect((await kv.list("")).entries).toEqual([]);
      following.close();
    } finally {
      await app.close();
    }
  });
});
