import type { Binding } from "../../domain/binding.js";
import { keyId, type IdentityKey } from "../../domain/identity-key.js";
import { decide, type DecideInput, type Resolved } from "../../domain/resolution.js";
import type { BindingStore } from "./binding-store.js";

/**
 * decide() until it has every binding it asked for, loading what it names through `store` into
 * `view`: the one loop publish and shadow mode share. A key already in `view` is read from it;
 * otherwise, unless `fresh` (a retry after a conflict, which must read the store), from the
 * store's cache, which usually answers synchronously, so decide() completes in one pass. Null only
 * for an update decide() rejects (no keys). `cost.reads` counts the KV reads made.
 */
export async function decideLoaded(
  store: BindingStore,
  input: DecideInput,
  view: Map<string, Binding | null>,
  fresh: boolean,
  cost: { reads: number } = { reads: 0 },
): Promise<Resolved | null> {
  const read = (k: IdentityKey) => {
    const id = keyId(k);
    const v = view.get(id);
    if (v !== undefined || fresh) return v;
    const c = store.cached(k);
    if (c !== undefined) view.set(id, c);
    return c;
  };
  for (let round = 0; ; round++) {
    const d = decide(input, read);
    if (d.status === "rejected") return null;
    if (d.status === "decided") return d;
    if (round > 50) throw new Error(`resolution of ${input.update.deviceId} did not converge`);
    cost.reads += await store.load(d.keys, view, fresh);
  }
}
