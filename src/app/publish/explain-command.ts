import { readFileSync } from "node:fs";
import { Command } from "commander";
import type { DeviceUpdate } from "../../domain/device-update.js";
import type { DecisionTrace } from "../../domain/resolution.js";
import type { Config } from "../config.js";
import { createApp } from "../container.js";
import type { ResolveResult } from "./publish-service.js";

/**
 * `idmap explain`: what publishing an update would decide, and why, read-only on the configured
 * stores (the same resolution as POST /v1/device-updates/resolve with explain).
 */
export function explainCommand(config: () => Config): Command {
  return new Command("explain")
    .argument("<update>", "a DeviceUpdate as JSON (an object or an array), a file holding it, or - for stdin")
    .option("--json", "print the results with their traces as JSON")
    .description("explain which device an update resolves to and why, without writing")
    .action(async (arg: string, o: { json?: boolean }) => {
      const updates = parseUpdates(arg);
      const app = await createApp({ ...config(), logLevel: "warn" });
      try {
        const results = await app.publish.resolve(updates, { explain: true });
        if (o.json) console.log(JSON.stringify(results, null, 2));
        else console.log(results.map((r, i) => renderExplanation(r, i + 1)).join("\n"));
      } finally {
        await app.close();
      }
    });
}

function parseUpdates(arg: string): DeviceUpdate[] {
  const trimmed = arg.trim();
  const text =
    trimmed.startsWith("{") || trimmed.startsWith("[") ? trimmed : readFileSync(arg === "-" ? 0 : arg, "utf8");
  const parsed = JSON.parse(text) as DeviceUpdate | DeviceUpdate[];
  return Array.isArray(parsed) ? parsed : [parsed];
}

/** A decision and its trace, one fact a line. */
export function renderExplanation(r: ResolveResult, n: number): string {
  const to = r.canonical_device_id ?? "a new device";
  const lines = [`update ${n} (${r.device_id || "no device_id"}): ${to}`];
  for (const x of r.rejected_identifiers ?? []) lines.push(`  refused ${x.field} ${x.value}: ${x.reason}`);
  const t: DecisionTrace | undefined = r.trace;
  if (!t) return [...lines, "  nothing in the update identifies a device"].join("\n");
  for (const k of t.quarantined_ignored ?? []) lines.push(`  ignored ${k.kind} ${k.value}: quarantined (shared)`);
  if (t.candidates.length === 0) lines.push("  no key of the update is bound");
  for (const c of t.candidates) {
    const why = (c.differing ?? []).map((d) => `${d.kind} ${d.update} here, ${d.device} there`).join("; ");
    const provisional = c.provisional ? " (provisional)" : "";
    lines.push(
      `  ${c.key.kind} ${c.key.value} names ${c.device_id}${provisional}: ${c.verdict}${why ? ` (${why})` : ""}`,
    );
  }
  if (t.provisional) {
    const reason = "reason" in t.provisional ? ` (${t.provisional.reason})` : "";
    lines.push(`  provisional device ${t.provisional.device_id}: ${t.provisional.action}${reason}`);
  }
  for (const k of t.quarantined ?? []) lines.push(`  quarantines ${k.kind} ${k.value}: shared by several devices`);
  for (const k of t.contested ?? [])
    lines.push(
      `  contests ${k.kind} ${k.value}: another device holds it from a report as new or newer (not moved; ambiguous)`,
    );
  if (t.own_id) lines.push(`  the update's own id: ${t.own_id}`);
  lines.push(`  rule: ${t.rule}`);
  return lines.join("\n");
}
