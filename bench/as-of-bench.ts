/**
 * As-of lookups on a large audit trail (issue 16, ADR 0016): how long `keyAsOf` (the last change of a
 * key at or before a time, and the first after) takes once the trail holds many rows, and how long the
 * retention prune takes.
 *
 *   npm run bench:as-of                       # SQLite in a temp dir, 200 000 rows over 20 000 keys
 *   npm run bench:as-of -- --rows=1000000 --keys=50000 --queries=5000
 *   IDMAP_BENCH_DATABASE_URL=postgres://... npm run bench:as-of   # the same on PostgreSQL (a scratch database)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDeviceStore } from "../src/app/adapters.js";
import { loadConfig } from "../src/app/config.js";
import type { ChangeReason } from "../src/domain/binding.js";
import type { AuditEntry } from "../src/ports/device-store.js";

const arg = (name: string, dflt: number) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : dflt;
};
const ROWS = arg("rows", 200_000);
const KEYS = arg("keys", 20_000);
const QUERIES = arg("queries", 2_000);
const T0 = 1_780_000_000_000;
const pg = process.env.IDMAP_BENCH_DATABASE_URL;

const dir = mkdtempSync(join(tmpdir(), "idmap-asof-bench-"));
const config = loadConfig({
  IDMAP_DATA_DIR: dir,
  IDMAP_LOG_LEVEL: "silent",
  ...(pg ? { IDMAP_DB: "postgres", IDMAP_DATABASE_URL: pg } : {}),
});
const store = await openDeviceStore(config);
await store.migrate();
const db = pg ? "postgres" : "sqlite";
try {
  // A DHCP pool: each address changes hands every ROWS/KEYS sightings, one minute apart.
  const started = performance.now();
  const batch: AuditEntry[] = [];
  for (let i = 0; i < ROWS; i++) {
    const k = i % KEYS;
    const round = Math.floor(i / KEYS);
    batch.push({
      atMs: T0 + i * 60_000,
      actor: "bench",
      key: { kind: "partition-ip", value: `bench:10.${k >> 16}.${(k >> 8) & 255}.${k & 255}` },
      fromDeviceId: round === 0 ? null : `dev-${k}-${round - 1}`,
      toDeviceId: `dev-${k}-${round}`,
      revision: i + 1,
      reason: (round === 0 ? "created" : "moved") as ChangeReason,
    });
    if (batch.length === 5_000 || i === ROWS - 1) {
      await store.appendAudit(batch.splice(0));
      if ((i + 1) % 50_000 === 0 || i === ROWS - 1)
        process.stderr.write(`as-of bench (${db}): ${i + 1}/${ROWS} audit rows written\n`);
    }
  }
  const writeS = (performance.now() - started) / 1000;
  const lat: number[] = [];
  let found = 0;
  for (let q = 0; q < QUERIES; q++) {
    const k = (q * 7_919) % KEYS;
    const at = T0 + ((q * 104_729) % ROWS) * 60_000 + 30_000;
    const s = performance.now();
    const r = await store.keyAsOf(
      { kind: "partition-ip", value: `bench:10.${k >> 16}.${(k >> 8) & 255}.${k & 255}` },
      at,
    );
    lat.push(performance.now() - s);
    if (r.before?.toDeviceId) found++;
  }
  lat.sort((a, b) => a - b);
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!.toFixed(3);
  const pruneStart = performance.now();
  const pruned = await store.pruneAudit(T0 + Math.floor(ROWS / 2) * 60_000);
  const pruneS = (performance.now() - pruneStart) / 1000;
  console.log(`as-of bench on ${db}: ${ROWS} audit rows over ${KEYS} keys (written in ${writeS.toFixed(1)} s)`);
  console.log(`  keyAsOf x${QUERIES}: p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${pct(1)} ms; ${found} answered`);
  console.log(`  pruneAudit (older half): ${pruned} rows deleted in ${pruneS.toFixed(1)} s`);
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
