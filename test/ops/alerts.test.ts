import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { Sample } from "../metrics/exposition.js";
import { promqlRefs } from "./promql.js";
import { referenceExposition, unresolved } from "./reference.js";

const OPS = fileURLToPath(new URL("../../docs/ops/", import.meta.url));
/** scripts/start-servers.sh (npm test's pretest) installs Debian's prometheus package, which ships promtool. */
const PROMTOOL = ["/usr/bin/promtool", "/usr/local/bin/promtool"].find((p) => existsSync(p));
const promtool = (): string => {
  if (!PROMTOOL)
    throw new Error("promtool is not installed: run scripts/start-servers.sh (apt-get install prometheus)");
  return PROMTOOL;
};

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rules: Rule[] = (
  parse(readFileSync(`${OPS}alerts.yml`, "utf8")) as { groups: { name: string; rules: Rule[] }[] }
).groups.flatMap((g) => g.rules);

let samples: Sample[];
beforeAll(async () => {
  samples = await referenceExposition();
});

describe("docs/ops/alerts.yml", () => {
  it("has the alerts the runbook describes, each with a severity, a summary and a runbook anchor", () => {
    expect(rules.map((r) => r.alert)).toEqual([
      "IdentityMapLookupHitRateLow",
      "IdentityMapPublishSuccessLow",
      "IdentityMapCasConflictsRising",
      "IdentityMapCasRetriesExhausted",
      "IdentityMapKvUnavailable",
      "IdentityMapBindingCacheUnsynced",
      "IdentityMapLookupLatencyHigh",
      "IdentityMapBindingsOutgrowDevices",
      "IdentityMapAuthFailuresHigh",
      "IdentityMapSharedIdentifierQuarantined",
    ]);
    const operations = readFileSync(fileURLToPath(new URL("../../docs/operations.md", import.meta.url)), "utf8");
    for (const r of rules) {
      expect(["warning", "critical"]).toContain(r.labels?.severity);
      expect(r.annotations?.summary).toBeTruthy();
      const anchor = /^docs\/operations\.md#([a-z0-9-]+)$/.exec(r.annotations?.runbook ?? "")?.[1];
      expect(anchor, `${r.alert} runbook`).toBeDefined();
      // GitHub's anchor of a heading: lower case, spaces to dashes, punctuation dropped.
      const headings = [...operations.matchAll(/^#+ (.+)$/gm)].map((m) =>
        m[1]!
          .toLowerCase()
          .replace(/[^a-z0-9 -]/g, "")
          .replace(/ /g, "-"),
      );
      expect(headings, `${r.alert}: docs/operations.md has no heading for #${anchor}`).toContain(anchor);
    }
  });

  it("names only metrics, labels and label values the service exports", () => {
    const problems = rules.flatMap((r) => unresolved(r.expr, samples).map((p) => `${r.alert}: ${p}`));
    expect(problems).toEqual([]);
    const metrics = new Set(rules.flatMap((r) => promqlRefs(r.expr).selectors.map((s) => s.metric)));
    expect([...metrics].sort()).toEqual([
      "identitymap_auth_failures_total",
      "identitymap_binding_cache_synced",
      "identitymap_bindings",
      "identitymap_conflict_total",
      "identitymap_devices",
      "identitymap_kv_operations_total",
      "identitymap_kv_publish_total",
      "identitymap_lookup_latency_seconds_bucket",
      "identitymap_lookup_total",
      "identitymap_quarantined_identifiers",
    ]);
  });

  it("the resolver catches a renamed metric, label or value", () => {
    expect(unresolved('rate(identitymap_lookups_total{result="hit"}[5m])', samples)).toEqual([
      "unknown metric identitymap_lookups_total",
    ]);
    expect(unresolved('rate(identitymap_lookup_total{outcome="hit"}[5m])', samples)).toEqual([
      "identitymap_lookup_total has no label outcome",
    ]);
    expect(unresolved('rate(identitymap_lookup_total{result=~"hit|found"}[5m])', samples)).toEqual([
      'identitymap_lookup_total has no series with result="found"',
    ]);
    expect(unresolved("sum by (backend) (rate(identitymap_lookup_total[5m]))", samples)).toEqual([
      "groups by backend, a label none of its metrics has",
    ]);
  });

  it("passes promtool check rules", () => {
    const out = execFileSync(promtool(), ["check", "rules", "alerts.yml"], { cwd: OPS, encoding: "utf8" });
    expect(out).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it("passes its promtool unit tests (docs/ops/alerts.test.yml)", () => {
    const out = execFileSync(promtool(), ["test", "rules", "alerts.test.yml"], { cwd: OPS, encoding: "utf8" });
    expect(out).toContain("SUCCESS");
    const tested = new Set(
      [...readFileSync(`${OPS}alerts.test.yml`, "utf8").matchAll(/alertname: (\w+)/g)].map((m) => m[1]),
    );
    expect([...tested].sort()).toEqual(rules.map((r) => r.alert).sort());
  });
});
