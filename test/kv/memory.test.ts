import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { kvContract } from "../contract/kv.contract.js";

kvContract("memory", async () => ({ kv: new MemoryKv(), cleanup: async () => {} }));
