import { expect } from "vitest";
import { checkConsistency, describeFinding } from "../../src/app/check/consistency-check.js";
import type { DeviceStore, IdentityKv } from "../../src/ports/index.js";

/**
 * Ends a concurrency, outage or simulator test (issue 12): the consistency checker walks the map and
 * the relational stores and must find nothing. Findings are shown as the CLI prints them.
 */
export async function expectConsistent(
  kv: IdentityKv,
  namespace: string,
  devices: readonly DeviceStore[],
  context = "",
  options: { settleMs?: number; nowMs?: () => number } = {},
): Promise<void> {
  const deadline = Date.now() + (options.settleMs ?? 0);
  // The service's clock when the test gives it one: bindings expire by it.
  const now = options.nowMs ?? Date.now;
  let findings = await checkConsistency({ kv, namespace, devices, nowMs: now() });
  while (findings.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    findings = await checkConsistency({ kv, namespace, devices, nowMs: now() });
  }
  expect(findings.map(describeFinding), `consistency check ${context}`).toEqual([]);
}
