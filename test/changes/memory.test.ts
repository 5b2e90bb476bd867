import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { changeStreamContract } from "../contract/change-stream.contract.js";

changeStreamContract(
  "memory",
  async () => {
    // One in-process store: every instance holds the same object.
    const kv = new MemoryKv();
    const shared = new Proxy(kv, {
      get: (t, p, r) => (p === "close" ? async () => {} : Reflect.get(t, p, r)),
    });
    return {
      client: async () => shared,
      forget: async () => kv.trimChanges(0),
      cleanup: () => kv.close(),
    };
  },
  { keepsEveryChange: true },
);
