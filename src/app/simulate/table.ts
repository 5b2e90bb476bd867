import { CLASSES, type DeviceClass } from "./fleet.js";
import type { LookupKindStats, SimReport, Target } from "./report.js";

const n = (x: number) => x.toLocaleString("en-US");

/** The summary as a readable table; missed targets are said plainly at the end. */
export function renderTable(r: SimReport): string {
  const d = r.devices;
  const rows: [string, string, string?, string?][] = [];
  const add = (label: string, value: string, target?: Target) =>
    rows.push([label, value, target?.target, target ? (target.met ? "ok" : "MISSED") : undefined]);
  const tg = (name: string) => r.targets.find((t) => t.name === name);
  const lk = (s: LookupKindStats) =>
    s.asked === 0 ? "-" : `${n(s.hits)}/${n(s.asked)} (${((100 * s.hits) / s.asked).toFixed(2)} %)`;

  add(
    "devices in truth (seen by a source)",
    `${n(d.truth)}${d.fleet !== d.truth ? ` of ${n(d.fleet)} in the fleet` : ""}`,
  );
  add("naive partition:ip ids (baseline)", `${n(d.baseline)}  (+${n(d.baseline_duplicates)} duplicates)`);
  add(
    "identity-map canonical ids",
    `${n(d.identity_map)}  (${d.duplicates >= 0 ? "+" : ""}${n(d.duplicates)} duplicates)`,
  );
  if (d.identity_map_live !== null) add("  devices held by the map at the end", n(d.identity_map_live));
  // The switch-on target (ids within 1 % of the devices), as measured and beyond the ids no data resolves.
  const pctOver = (ids: number, truth: number) => `${(((ids - truth) / truth) * 100).toFixed(2)} %`;
  const days = r.series.filter((p) => p.unattributable !== undefined && p.truth > 0);
  if (days.length > 0)
    add(
      "  ids vs truth (beyond unattributable): hour",
      days
        .map(
          (p) =>
            `${p.hour}: ${pctOver(p.identity_map, p.truth)} (${pctOver(p.identity_map - p.unattributable!, p.truth)})`,
        )
        .join(", "),
    );
  add("  ids with asserting sightings", n(d.strong_ids));
  add("  sweep-only ids (all)", n(d.weak_only_ids));
  add("  sweep-only ids of devices others know", n(d.weak_ids_of_strong_devices));
  add("    of them, at a tenure no asserting source reported", n(d.weak_ids_unattributable));
  add("  split devices (extra ids)", `${n(d.split_devices)} (${n(d.split_extra_ids)})`);
  const where = Object.entries(d.duplicates_by_group)
    .map(([g, v]) => [g, v.sweep_only_ids + v.split_extra_ids, v] as const)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4);
  if (where.length > 0)
    add(
      "  most duplicates (class@site: sweep-only + split)",
      where.map(([g, , v]) => `${g} ${n(v.sweep_only_ids)}+${n(v.split_extra_ids)}`).join(", "),
    );
  add("duplicates removed vs baseline", `${d.reduction_pct.toFixed(2)} %`, tg("duplicates removed vs baseline"));
  add("  the most the data allows (without guessing)", `${d.reduction_ceiling_pct.toFixed(2)} %`);
  add("false merges", n(d.false_merges), tg("false merges"));
  add("  asserting sightings on another device's id", n(d.misattributed_asserting));
  add("misattributed sweeps (inherent to IP-only data)", `${n(d.misattributed_sweeps)} of ${n(d.sweep_sightings)}`);
  add("publish success", `${r.publish.success_pct} %  (${n(r.publish.updates)} updates)`, tg("publish success"));
  const o = r.publish.outcomes;
  add(
    "  outcomes",
    `created ${n(o.created ?? 0)}, updated ${n(o.updated ?? 0)}, unchanged ${n(o.unchanged ?? 0)}, failed ` +
      `${n(o.failed ?? 0)}`,
  );
  for (const [src, c] of Object.entries(r.publish.by_source)) {
    add(`    ${src}`, `created ${n(c.created ?? 0)}, updated ${n(c.updated ?? 0)}, unchanged ${n(c.unchanged ?? 0)}`);
  }
  add("lookup hit rate", `${r.lookups.hit_rate_pct.toFixed(2)} %`, tg("lookup hit rate"));
  add(
    "  periodic: strongest id / partition:ip",
    `${lk(r.lookups.periodic.strongest)} / ${lk(r.lookups.periodic.address)}`,
  );
  add("  at the end: strongest id / partition:ip", `${lk(r.lookups.final.strongest)} / ${lk(r.lookups.final.address)}`);
  const sm = r.shared_mac_lookups;
  const smRow = (x: (typeof sm)["dock"]) =>
    `${n(x.confident)} confident (${n(x.confident_after_one_change)} after one change of holder, ` +
    `${n(x.confident_other_device)} not the last holder), ${n(x.ambiguous)} ambiguous, ${n(x.not_found)} not found`;
  const smAsked = sm.dock.shared_asked + sm.dongle.shared_asked;
  add(
    "lookups by a shared dock/dongle MAC: confident",
    `${n(sm.dock.confident + sm.dongle.confident)} of ${n(smAsked)}`,
    tg("confident answers by shared dock/dongle MACs"),
  );
  add(`  docks (${n(sm.dock.shared_asked)})`, smRow(sm.dock));
  add(`  dongles (${n(sm.dongle.shared_asked)})`, smRow(sm.dongle));
  add(
    "  one holder so far: named it",
    `${n(sm.dock.single_confident + sm.dongle.single_confident)} of ` +
      n(sm.dock.single_asked + sm.dongle.single_asked),
  );
  const k = r.kv;
  add(
    "KV ops per unchanged update",
    `${k.unchanged.per_update}  (${n(k.unchanged.reads)} reads, ${n(k.unchanged.writes)} writes / ` +
      `${n(k.unchanged.updates)})`,
    tg("KV ops per unchanged update"),
  );
  add(
    "KV ops per changed update",
    `${k.changed.per_update}  (keys+1 = ${k.changed.keys_plus_one_per_update}; ${n(k.changed.reads)} reads, ` +
      `${n(k.changed.writes)} writes / ${n(k.changed.updates)})`,
    tg("KV ops per changed update"),
  );
  const top = (m: Readonly<Record<string, number>>, k: number) =>
    Object.entries(m)
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([x, c]) => `${x} ${n(c)}`)
      .join(", ");
  add("  binding changes (most frequent)", top(k.binding_changes, 6));
  add("  conflicts by reason", top(k.conflicts, 6) || "none");
  const ir = r.identity_rules;
  add(
    "provisional devices: taken over / absorbed / refused",
    `${n(ir.provisional_take_overs)} / ${n(ir.absorptions)} / ${n(ir.absorptions_refused)}`,
  );
  add("shared MACs quarantined", n(ir.quarantines));
  const b = r.bindings;
  if (b.available) {
    add(
      "bindings (live, redirects apart) vs live identities",
      `${n(b.identity_bindings)} vs ${n(b.live_identities)} (${b.difference_pct >= 0 ? "+" : ""}${b.difference_pct} %)`,
      tg("bindings vs live identities"),
    );
    add(
      "  by kind: bound / live",
      Object.entries(b.live_identities_by_kind)
        .map(([kind, c]) => `${kind} ${n(b.by_kind[kind] ?? 0)}/${n(c)}`)
        .join(", "),
    );
    add(
      "  address keys left less than a TTL ago",
      `partition-ip ${n(b.vacated_within_ttl["partition-ip"] ?? 0)}, ip ${n(b.vacated_within_ttl.ip ?? 0)} (with ` +
        `them: ${b.difference_with_vacated_pct >= 0 ? "+" : ""}${b.difference_with_vacated_pct} %)`,
    );
    add("  redirect ids / expired awaiting compaction", `${n(b.redirects)} / ${n(b.expired)}`);
  } else add("bindings vs live identities", `not available with --url (live identities: ${n(b.live_identities)})`);
  add("run", `${r.timing.seconds} s, ${n(r.timing.updates_per_second)} updates/s, ${n(r.timing.lookups)} lookups`);

  const w0 = Math.max(...rows.map((x) => x[0].length));
  const w1 = Math.max(...rows.map((x) => x[1].length));
  const w2 = Math.max(6, ...rows.map((x) => (x[2] ?? "").length));
  const s = r.scenario;
  const cov = Object.entries(s.coverage)
    .map(([c, v]) => `${c} ${n(v)} (${describeCoverage(c as DeviceClass)})`)
    .join(", ");
  const lines = [
    `identity-map simulation: ${n(s.devices)} devices, ${s.days} days, seed ${s.seed}; ${s.service}`,
    `fleet: ${cov}; ${s.nic_swaps} NIC swaps`,
    `shared MACs: ${n(s.shared_macs.docks)} hot-desk docks, ${n(s.shared_macs.dongles)} USB dongles among ` +
      `${n(s.shared_macs.dongle_laptops)} MAC-only laptops, ${n(s.shared_macs.cloned_vms)} cloned VMs`,
    "",
    `${"".padEnd(w0)}  ${"value".padEnd(w1)}  ${"target".padEnd(w2)}`,
    ...rows.map(([a, v, t, m]) => `${a.padEnd(w0)}  ${v.padEnd(w1)}  ${(t ?? "").padEnd(w2)}  ${m ?? ""}`.trimEnd()),
    "",
  ];
  for (const t of r.targets) if (t.at_scale_only) lines.push(`- ${t.name}: ${t.at_scale_only}`);
  const missed = r.targets.filter((t) => !t.met);
  if (missed.length === 0) lines.push("All targets met.");
  else {
    lines.push(`Targets missed (${missed.length}):`);
    for (const t of missed) lines.push(`- ${t.name}: ${t.value}, target ${t.target}${t.note ? `. ${t.note}` : ""}`);
  }
  return lines.join("\n");
}

function describeCoverage(c: DeviceClass): string {
  const p = CLASSES[c];
  const s = [p.armis && "Armis", p.netbox && "NetBox", p.agent && "agent"].filter(Boolean).join("+");
  return s || "sweeps only";
}
