import type { NormalizedUpdate } from "../../domain/device-update.js";
import { keyId, type IdentityKey } from "../../domain/identity-key.js";

/**
 * Groups updates that may touch the same bindings: they share a key, or their keys are bound to
 * the same device now. Groups run concurrently; inside a group, in request order.
 */
export function groupUpdates(
  updates: readonly NormalizedUpdate[],
  boundDevice: (k: IdentityKey) => string | undefined,
): number[][] {
  const parent = updates.map((_, i) => i);
  const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i]!)));
  const owner = new Map<string, number>();
  const link = (token: string, i: number) => {
    const j = owner.get(token);
    if (j === undefined) owner.set(token, i);
    else parent[find(i)] = find(j);
  };
  updates.forEach((u, i) => {
    for (const k of u.keys) {
      link(keyId(k), i);
      const device = boundDevice(k);
      if (device !== undefined) link(`device|${device}`, i);
    }
  });
  const groups = new Map<number, number[]>();
  updates.forEach((_, i) => {
    const r = find(i);
    const g = groups.get(r);
    if (g) g.push(i);
    else groups.set(r, [i]);
  });
  return [...groups.values()];
}

/**
 * Runs the groups with bounded concurrency. When one fails, no new group starts and the others finish
 * what they are doing before the error surfaces, so every applied write is still recorded.
 */
export async function runGroups(
  groups: number[][],
  concurrency: number,
  f: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < groups.length && !failure) {
      const g = groups[next++]!;
      try {
        for (const i of g) await f(i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, groups.length) }, worker));
  if (failure) throw failure.error;
}
