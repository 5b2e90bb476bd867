import { mkdir, open, readFile, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ConfigError } from "../../domain/errors.js";

/** `<data dir>/backfill/tombstones-<start time>.jsonl`: one file per run (a resumed run keeps its own). */
export function defaultTombstonesPath(dataDir: string, nowMs: number): string {
  if (dataDir === ":memory:")
    throw new ConfigError("--tombstones-out", "required when the data directory is in memory");
  return join(dataDir, "backfill", `tombstones-${new Date(nowMs).toISOString().replace(/[:.]/g, "-")}.jsonl`);
}

/**
 * The tombstones as JSON Lines, one per retired id. A resumed run appends and skips lines the
 * interrupted run already wrote, so the file holds each tombstone once.
 */
export class TombstoneFile {
  private constructor(
    private readonly fh: FileHandle,
    private readonly written: Set<string>,
  ) {}

  static async open(path: string, resume: boolean): Promise<TombstoneFile> {
    await mkdir(dirname(path), { recursive: true });
    const written = new Set<string>();
    let torn = false;
    if (resume) {
      const text = await readFile(path, "utf8").catch(() => "");
      torn = text !== "" && !text.endsWith("\n");
      for (const line of text.split("\n")) {
        if (line.trim() === "") continue;
        try {
          const t = JSON.parse(line) as { device_id: string; merged_into: string };
          written.add(`${t.device_id}\u0000${t.merged_into}`);
        } catch {
          // A line cut short by the interruption: the tombstone is written again.
        }
      }
    }
    const fh = await open(path, resume ? "a" : "w");
    if (torn) await fh.appendFile("\n");
    return new TombstoneFile(fh, written);
  }

  async append(lines: readonly { device_id: string; merged_into: string }[]): Promise<void> {
    const fresh = lines.filter((l) => !this.written.has(`${l.device_id}\u0000${l.merged_into}`));
    if (fresh.length === 0) return;
    await this.fh.appendFile(`${fresh.map((l) => JSON.stringify(l)).join("\n")}\n`);
    await this.fh.datasync();
    for (const l of fresh) this.written.add(`${l.device_id}\u0000${l.merged_into}`);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
