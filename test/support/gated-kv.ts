import type { IdentityKv } from "../../src/ports/identity-kv.js";

export interface Gate {
  /** Resolves when the first write the gate holds has arrived (every matching write waits until `release`). */
  readonly reached: Promise<void>;
  release(): void;
}

/**
 * A KV that holds chosen writes until released, to force an interleaving of two service instances
 * deterministically (one instance stopped between two steps of its publish while the other runs).
 */
export type KeyMatch = string | ((key: string) => boolean);

export function gatedKv(
  inner: IdentityKv,
): IdentityKv & { hold(op: "create" | "update" | "delete", key: KeyMatch): Gate } {
  const gates: { op: string; matches: (key: string) => boolean; arrive: () => void; released: Promise<void> }[] = [];
  const wait = async (op: string, key: string) => {
    const g = gates.find((x) => x.op === op && x.matches(key));
    if (!g) return;
    g.arrive();
    await g.released;
  };
  const hold = (op: "create" | "update" | "delete", key: KeyMatch): Gate => {
    const matches = typeof key === "string" ? (k: string) => k.includes(key) : key;
    let arrive!: () => void;
    let release!: () => void;
    const reached = new Promise<void>((r) => (arrive = r));
    const released = new Promise<void>((r) => (release = r));
    const entry = { op, matches, arrive, released };
    gates.push(entry);
    return {
      reached,
      release: () => {
        gates.splice(gates.indexOf(entry), 1);
        release();
      },
    };
  };
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === "hold") return hold;
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== "function") return v;
      if (prop === "create" || prop === "update" || prop === "delete") {
        return async (key: string, ...rest: unknown[]) => {
          await wait(prop, key);
          return (v as (...a: unknown[]) => unknown).call(target, key, ...rest);
        };
      }
      return (v as (...a: unknown[]) => unknown).bind(target);
    },
  }) as IdentityKv & { hold(op: "create" | "update" | "delete", key: KeyMatch): Gate };
}
