/**
 * Publish CPU per update and throughput as the map grows (issue 13): for each backend, one child
 * process (children/publish-scale.ts) seeds the map to each size and times new devices, DHCP moves
 * and unchanged updates there, in-process (the service's own cost, without HTTP and JSON).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ScaleSample } from "../children/publish-scale.js";
import type { BackendName } from "./backends.js";
import { fmtInt, spawnChild } from "./util.js";

export interface ScaleRow extends ScaleSample {
  readonly backend: BackendName;
}

export interface ScaleOptions {
  readonly targets: readonly number[];
  readonly backends: readonly BackendName[];
  readonly updates: number;
  readonly batchSize: number;
  readonly rounds: number;
}

export async function benchScale(opts: ScaleOptions, progress: (line: string) => void): Promise<ScaleRow[]> {
  const out: ScaleRow[] = [];
  for (const backend of opts.backends) {
    const dataDir = mkdtempSync(join(tmpdir(), "idmap-bench-scale-"));
    try {
      const child = spawnChild("publish-scale.ts", {
        env: {
          IDMAP_KV_BACKEND: backend,
          IDMAP_DATA_DIR: dataDir,
          // As deployed: every commit synced (the memory bench seeds with normal; this one times writes).
          IDMAP_EMBEDDED_SYNC: "full",
          IDMAP_LOG_LEVEL: "warn",
        },
      });
      let failure = "";
      child.proc.on("message", (m: { type: string; [k: string]: unknown }) => {
        if (m.type === "error") failure = String(m.error).split("\n")[0]!;
        if (m.type === "progress")
          progress(
            `[${backend}] scale: seeding, ${fmtInt(m.bindings as number)} of ${fmtInt(m.target as number)} bindings`,
          );
        if (m.type === "log") progress(`[${backend}] scale: service ${String(m.level)}: ${String(m.msg)}`);
        if (m.type === "sample") {
          const s = m.sample as ScaleSample;
          out.push({ backend, ...s });
          progress(
            `[${backend}] scale: ${fmtInt(s.bindings)} bindings: ` +
              s.phases
                .map((p) => `${p.phase} ${fmtInt(p.cpuUsPerUpdate)} us/update, ${fmtInt(p.updatesPerSecond)}/s`)
                .join("; "),
          );
        }
      });
      child.send({
        type: "start",
        targets: opts.targets,
        updates: opts.updates,
        batchSize: opts.batchSize,
        rounds: opts.rounds,
      });
      await new Promise<void>((resolve, reject) => {
        child.proc.once("exit", (code) =>
          code === 0 ? resolve() : reject(new Error(`publish-scale child exited with ${code}: ${failure}`)),
        );
        child.next("error").catch(() => {});
      });
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  return out;
}
