import { describe, expect, it } from "vitest";
import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { BindingStore } from "../../src/app/bindings/binding-store.js";
import { RevisionConflict } from "../../src/domain/errors.js";
import type { IdentityKey } from "../../src/domain/identity-key.js";
import type { CanonicalRecord } from "../../src/domain/record.js";
import { noopMetrics } from "../../src/ports/metrics.js";

const key: IdentityKey = { kind: "armis-id", value: "A-1" };
const record: CanonicalRecord = {
  canonicalDeviceId: "dev-1",
  partition: "p",
  metadataHash: "h",
  updatedAtMs: 1,
  attributes: {},
  source: "armis",
  authority: false,
  expiresAtMs: 0,
  operationId: "op-1",
  keys: [{ ...key, sources: ["armis"] }],
};

describe("BindingStore", () => {
  it("a conflict carries the identity key it met, not only the KV path", async () => {
    const store = new BindingStore(new MemoryKv(), "ns", undefined, noopMetrics);
    await store.apply({ op: "create", key, record }, 60_000);
    const second = store.apply({ op: "create", key, record: { ...record, operationId: "op-2" } }, 60_000);
    await expect(second).rejects.toBeInstanceOf(RevisionConflict);
    await expect(second).rejects.toMatchObject({ code: "revision_conflict", key: store.path(key), identityKey: key });
  });

  it("another namespace is the same map under other paths", async () => {
    const kv = new MemoryKv();
    const store = new BindingStore(kv, "ns", undefined, noopMetrics);
    const other = store.inNamespace("other");
    await other.apply({ op: "create", key, record }, 60_000);
    expect(await store.get(key)).toBeNull();
    expect((await other.get(key))?.record.canonicalDeviceId).toBe("dev-1");
  });
});
