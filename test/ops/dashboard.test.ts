import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import type { Sample } from "../metrics/exposition.js";
import { promqlRefs } from "./promql.js";
import { referenceExposition, unresolved } from "./reference.js";

interface Target {
  expr: string;
  refId: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query: string | { query: string };
}

const dashboard = JSON.parse(readFileSync(new URL("../../docs/ops/dashboard.json", import.meta.url), "utf8")) as {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
};
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queries = panels.filter((p) => p.type !== "row");

/** scripts/start-servers.sh (npm test's pretest) installs Debian's prometheus package, which ships promtool. */
const PROMTOOL = ["/usr/bin/promtool", "/usr/local/bin/promtool"].find((p) => existsSync(p));
const promtool = (): string => {
  if (!PROMTOOL)
    throw new Error("promtool is not installed: run scripts/start-servers.sh (apt-get install prometheus)");
  return PROMTOOL;
};

let samples: Sample[];
beforeAll(async () => {
  samples = await referenceExposition();
});

describe("docs/ops/dashboard.json", () => {
  it("picks its Prometheus data source from a variable, used by every panel and query", () => {
    expect(dashboard.templating.list.find((v) => v.name === "datasource")).toMatchObject({
      type: "datasource",
      query: "prometheus",
    });
    for (const p of queries) {
      expect(p.datasource, p.title).toEqual({ type: "prometheus", uid: "${datasource}" });
      for (const t of p.targets ?? [])
        expect(t.datasource, p.title).toEqual({ type: "prometheus", uid: "${datasource}" });
    }
  });

  it("has unique panel ids, and panels that do not overlap", () => {
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    const cells = new Set<string>();
    for (const p of panels) {
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          expect(cells.has(`${x},${y}`), `${p.title} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
      }
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
    }
  });

  it("shows what the runbook points at", () => {
    const titles = queries.map((p) => p.title);
    for (const t of [
      "Lookup hit rate",
      "Publish outcomes",
      "Publish success ratio",
      "Conflicts by reason",
      "CAS retry exhaustion",
      "KV operations by backend",
      "KV latency p50 / p99 by backend",
      "Lookup latency p50 / p99 by resolved_via",
      "Bindings by kind vs devices",
      "Writes avoided",
      "Rejected identifiers",
      "Merge vetoes and stale links",
    ]) {
      expect(titles).toContain(t);
    }
  });

  it("every query names only metrics, labels and label values the service exports", () => {
    const problems: string[] = [];
    for (const p of queries) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? [])
        problems.push(...unresolved(t.expr, samples).map((e) => `${p.title} ${t.refId}: ${e}`));
    }
    for (const v of dashboard.templating.list.filter((x) => x.type === "query")) {
      const q = typeof v.query === "string" ? v.query : v.query.query;
      const m = /^label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*(\w+)\s*\)$/.exec(q);
      expect(m, `variable ${v.name}: ${q}`).not.toBeNull();
      problems.push(...unresolved(m![1]!, samples).map((e) => `variable ${v.name}: ${e}`));
      expect(["job", "instance"]).toContain(m![2]);
    }
    expect(problems).toEqual([]);
  });

  it("covers every identitymap metric the alerts use, and the series the brief asks for", () => {
    const used = new Set(
      queries.flatMap((p) => (p.targets ?? []).flatMap((t) => promqlRefs(t.expr).selectors.map((s) => s.metric))),
    );
    for (const m of [
      "identitymap_lookup_total",
      "identitymap_lookup_latency_seconds_bucket",
      "identitymap_kv_publish_total",
      "identitymap_publish_latency_seconds_bucket",
      "identitymap_publish_batch_size_bucket",
      "identitymap_conflict_total",
      "identitymap_kv_operations_total",
      "identitymap_kv_operation_latency_seconds_bucket",
      "identitymap_writes_avoided_total",
      "identitymap_bindings",
      "identitymap_devices",
      "identitymap_binding_cache_synced",
      "identitymap_bindings_expired_total",
      "identitymap_bindings_compacted_total",
      "identitymap_rejected_identifiers_total",
      "identitymap_merge_vetoes_total",
    ]) {
      expect(used, m).toContain(m);
    }
  });

  it("every query is valid PromQL (promtool, with the Grafana variables filled in)", () => {
    const exprs = queries.flatMap((p) =>
      (p.targets ?? []).map((t) => t.expr.replaceAll("$__rate_interval", "5m").replaceAll("$job", ".*")),
    );
    const dir = mkdtempSync(join(tmpdir(), "idmap-dashboard-"));
    try {
      const rules = {
        groups: [{ name: "dashboard", rules: exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })) }],
      };
      writeFileSync(join(dir, "queries.yml"), stringify(rules));
      const out = execFileSync(promtool(), ["check", "rules", "queries.yml"], { cwd: dir, encoding: "utf8" });
      expect(out).toContain(`SUCCESS: ${exprs.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
