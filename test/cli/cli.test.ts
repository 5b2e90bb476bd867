import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildRestApp } from "../../src/adapters/rest/rest-app.js";
import type { App } from "../../src/app/container.js";
import { testApp } from "../support/app.js";
import { runCli } from "../support/child-service.js";

const DEVICES = 3000;
const dir = mkdtempSync(join(tmpdir(), "idmap-cli-"));
const file = join(dir, "updates.jsonl");
let app: App;
let rest: FastifyInstance;
let url: string;
const requests: string[] = [];

beforeAll(async () => {
  ({ app } = await testApp());
  rest = await buildRestApp(app);
  rest.addHook("onRequest", async (req) => {
    requests.push(`${req.method} ${req.url}`);
  });
  url = await rest.listen({ host: "127.0.0.1", port: 0 });
  const lines = Array.from({ length: DEVICES }, (_, i) =>
    JSON.stringify({
      device_id: `cli-${String(i).padStart(5, "0")}`,
      ip: `10.${60 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
      partition: "cli",
      mac: `02:c1:00:00:${((i >> 8) & 255).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`,
      source: "agent",
    }),
  );
  // Two updates that cannot identify anything, and one with an invalid MAC that is still published.
  lines.splice(10, 0, JSON.stringify({ source: "agent" }), JSON.stringify({ hostname: "nobody" }));
  writeFileSync(file, `${lines.join("\n")}\n`);
});
afterAll(async () => {
  await rest.close();
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("idmap against a running service (--url)", () => {
  it("publishes in batches with progress, prints API-shaped results and a summary, exits 3 on rejections", async () => {
    requests.length = 0;
    const r = await runCli(["publish", file, "--url", url, "--batch-size", "1000", "--progress"], {}, 120_000);
    expect(r.code).toBe(3);
    const results = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(results).toHaveLength(DEVICES + 2);
    expect(results[0]).toMatchObject({ device_id: "cli-00000", canonical_device_id: "cli-00000", outcome: "created" });
    expect(results.filter((x) => x.outcome === "rejected")).toHaveLength(2);
    expect(requests.filter((q) => q === "POST /v1/device-updates")).toHaveLength(4);
    expect(r.stderr).toMatch(/3002 updates: 3000 created, 0 updated, 0 unchanged, 2 rejected, 0 failed/);
    expect(r.stderr.match(/updates sent/g)).toHaveLength(4);
  }, 150_000);

  it("exports every device with its keys as CSV, one page at a time", async () => {
    requests.length = 0;
    const r = await runCli(["export", "--url", url, "--format", "csv", "--page-size", "500"], {}, 120_000);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toBe(
      "device_id,partition,ip,hostname,source,provisional,first_seen_unix_millis,last_seen_unix_millis,keys",
    );
    expect(lines).toHaveLength(DEVICES + 1);
    expect(lines[1]).toMatch(/^cli-00000,cli,10\.60\.0\.0,,agent,false,\d+,\d+,device-id=cli-00000 mac=02:C1:/);
    // Streamed: never more than a page asked for at once.
    const pages = requests.filter((q) => q.startsWith("GET /v1/canonical-devices?"));
    expect(pages.length).toBeGreaterThanOrEqual(DEVICES / 500);
    expect(pages.every((q) => q.includes("limit=500"))).toBe(true);
  }, 150_000);

  it("exports NDJSON filtered, looks up, and tells a miss from an error", async () => {
    const ex = await runCli(["export", "--url", url, "--source", "nobody-reports-this"], {});
    expect(ex.code).toBe(0);
    expect(ex.stdout).toBe("");
    const hit = await runCli(["lookup", "--url", url, "--mac", "02-C1-00-00-00-05"], {});
    expect(hit.code).toBe(0);
    expect(JSON.parse(hit.stdout)).toMatchObject({
      found: true,
      record: { canonical_device_id: "cli-00005" },
      matched_key: { kind: "mac" },
    });
    const miss = await runCli(["lookup", "--url", url, "--mac", "02:c1:ff:ff:ff:ff"], {});
    expect(miss.code).toBe(4);
    const bad = await runCli(["lookup", "--url", url, "--mac", "not-a-mac"], {});
    expect(bad.code).toBe(1);
    const down = await runCli(["lookup", "--url", "http://127.0.0.1:9", "--mac", "02:c1:00:00:00:05"], {}, 60_000);
    expect(down.code).toBe(1);
  }, 120_000);
});

describe("idmap in-process", () => {
  it("publishes to the configured stores, reads history, and prints its version", async () => {
    const env = { IDMAP_DATA_DIR: join(dir, "data"), IDMAP_LOG_LEVEL: "silent", CANONICAL_IDENTITY_MAP_ENABLED: "on" };
    const one = join(dir, "one.jsonl");
    writeFileSync(one, `${JSON.stringify({ device_id: "solo", ip: "10.9.9.9", mac: "02:aa:00:00:00:01" })}\n`);
    const p = await runCli(["publish", one], env, 60_000);
    expect(p.code).toBe(0);
    expect(JSON.parse(p.stdout)).toMatchObject({ device_id: "solo", outcome: "created" });
    const h = await runCli(["history", "solo"], env, 60_000);
    expect(h.code).toBe(0);
    expect(h.stdout.trim().split("\n").length).toBeGreaterThan(1);
    const unknown = await runCli(["history", "never-seen"], env, 60_000);
    expect(unknown.code).toBe(4);
    const v = await runCli(["--version"], {});
    const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
    expect(v.stdout.trim()).toBe(version);
  }, 150_000);
});
