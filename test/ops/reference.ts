import { loadConfig } from "../../src/app/config.js";
import { compact } from "../../src/app/bindings/compaction.js";
import { createApp } from "../../src/app/container.js";
import { silentLogger } from "../../src/app/logger.js";
import { PublishService } from "../../src/app/publish/publish-service.js";
import { ManualClock } from "../support/app.js";
import { parseExposition, type Sample } from "../metrics/exposition.js";
import { FaultyKv } from "../metrics/faults.js";
import { promqlRefs } from "./promql.js";

/**
 * The service's exposition after it has done a bit of everything: publishes of every outcome, a
 * veto, a refused rebind, a CAS conflict, a lost reply, retry exhaustion, a KV outage, lookups of
 * every kind and a compaction. Every series an alert or a panel may read exists in it.
 */
export async function referenceExposition(): Promise<Sample[]> {
  const config = loadConfig({
    IDMAP_DATA_DIR: ":memory:",
    IDMAP_LOG_LEVEL: "silent",
    CANONICAL_IDENTITY_MAP_ENABLED: "on",
  });
  const kv = new FaultyKv();
  const clock = new ManualClock();
  const app = await createApp(config, { clock, logger: silentLogger, kv });
  try {
    const armis = (id: string) => ({ armis_device_id: id });
    const p = (updates: object[]) => app.publish.publish(updates as never, "reference");
    await p([{ device_id: "dev-Y", mac: "02:00:00:00:00:02", metadata: armis("A2") }]);
    await p([{ device_id: "dev-Y", mac: "02:00:00:00:00:02", metadata: armis("A2") }]);
    await p([{ device_id: "dev-X", mac: "02:00:00:00:00:01" }]);
    await p([{ device_id: "dev-X", mac: "02:00:00:00:00:01,02:00:00:00:00:02" }]);
    await p([{ device_id: "dev-V", mac: "02:00:00:00:00:03", metadata: armis("A1") }]);
    await p([{ device_id: "dev-Z", mac: "02:00:00:00:00:03", metadata: armis("A3") }]);
    await p([{ device_id: "p:10.0.0.5", ip: "10.0.0.5", partition: "p", metadata: armis("A9"), source: "armis" }]);
    await p([{ device_id: "p:10.0.0.9", ip: "10.0.0.9", partition: "p", metadata: armis("A9"), source: "armis" }]);
    await p([{ mac: "00:00:00:00:00:00" }]);
    kv.faults.push("conflict");
    await p([{ device_id: "dev-C", metadata: armis("A-conflict") }]);
    kv.faults.push("lost_reply");
    await p([{ device_id: "dev-L", metadata: armis("A-lost") }]);
    kv.alwaysConflict = true;
    const impatient = new PublishService({
      ...app,
      log: silentLogger,
      backoff: { initialMs: 1, maxMs: 1, multiplier: 1, jitter: 0, budgetMs: 5 },
    });
    await impatient.publish([{ device_id: "dev-E", metadata: armis("A-exhausted") }], "reference");
    kv.alwaysConflict = false;
    kv.down = true;
    await p([{ device_id: "dev-D", metadata: armis("A-down") }]).catch(() => {});
    // A miss while the KV is down is an outage (503), not "not found" (issue 12).
    await app.lookup.lookup({ identityKeys: [{ kind: "armis-id", value: "A-nowhere" }] }).catch(() => {});
    kv.down = false;

    await app.devices.upsertDevices([
      {
        deviceId: "legacy-1",
        canonicalDeviceId: "legacy-1",
        mergedInto: null,
        partition: "p",
        ip: "",
        macs: [],
        armisId: "A-legacy",
        netboxIds: [],
        hostname: "",
        source: "armis",
        firstSeenMs: 0,
        lastSeenMs: 0,
        metadata: {},
      },
    ]);
    for (const value of ["A2", "A-legacy", "A-legacy", "A-unknown"])
      await app.lookup.lookup({ identityKeys: [{ kind: "armis-id", value }], mayWrite: true });
    await app.lookup.lookup({ identityKeys: [{ kind: "mac", value: "not-a-mac" }] }).catch(() => {});

    await p([{ ip: "10.9.0.1", partition: "p", source: "sweep" }]);
    clock.advance(25 * 3_600_000);
    await compact(app.store, app.devices, clock.nowMs(), app.metrics, silentLogger);
    return parseExposition(await app.metrics.registry.metrics());
  } finally {
    await app.close();
  }
}

/** Labels Prometheus adds to every scraped series: never in the registry, always allowed. */
const TARGET_LABELS = new Set(["job", "instance"]);

/**
 * What in one PromQL expression does not resolve against the exposition: unknown metrics, labels
 * no series of that metric has, and label values (`=`, and each alternative of a plain `=~a|b`) no
 * series carries. Empty when everything resolves.
 */
export function unresolved(expr: string, samples: readonly Sample[]): string[] {
  const problems: string[] = [];
  const refs = promqlRefs(expr);
  if (refs.selectors.length === 0) problems.push(`reads no metric: ${expr}`);
  const labelsInExpr = new Set<string>(TARGET_LABELS);
  for (const sel of refs.selectors) {
    const series = samples.filter((s) => s.name === sel.metric);
    if (series.length === 0) {
      problems.push(`unknown metric ${sel.metric}`);
      continue;
    }
    for (const s of series) for (const l of Object.keys(s.labels)) labelsInExpr.add(l);
    for (const m of sel.matchers) {
      if (TARGET_LABELS.has(m.label)) continue;
      if (!series.some((s) => m.label in s.labels)) {
        problems.push(`${sel.metric} has no label ${m.label}`);
        continue;
      }
      if (m.value.includes("$") || m.op === "!=" || m.op === "!~") continue;
      const values = m.op === "=" ? [m.value] : /^[\w.+-]+(\|[\w.+-]+)*$/.test(m.value) ? m.value.split("|") : [];
      for (const v of values)
        if (!series.some((s) => s.labels[m.label] === v))
          problems.push(`${sel.metric} has no series with ${m.label}="${v}"`);
    }
  }
  for (const l of refs.groupingLabels)
    if (!labelsInExpr.has(l)) problems.push(`groups by ${l}, a label none of its metrics has`);
  return problems;
}
