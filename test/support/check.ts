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
  nowMs = Date.now(),
): Promise<void> {
  const findings = await checkConsistency({ kv, namespace, devices, nowMs });
  expect(findings.map(describeFinding), `consistency check ${context}`).toEqual([]);
}
