import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/openapi-document.js";

const tree = mkdtempSync(join(tmpdir(), "idmap-start-"));
afterAll(() => rmSync(tree, { recursive: true, force: true }));

function file(path: string, atSeconds: number): void {
  const p = join(tree, path);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, "x");
  utimesSync(p, atSeconds, atSeconds);
}

function check(): { status: number; out: string } {
  try {
    const out = execFileSync("node", [join(ROOT, "scripts/build-if-stale.mjs"), "--check", "--root", tree]);
    return { status: 0, out: out.toString().trim() };
  } catch (e) {
    const err = e as { status: number; stdout: Buffer };
    return { status: err.status, out: err.stdout.toString().trim() };
  }
}

describe("npm start's staleness check", () => {
  it("is stale with no build, current once the build is newer than every source, stale after an edit", () => {
    for (const p of ["src/app/cli.ts", "src/domain/mac.ts", "packages/client/src/index.ts", "package.json"])
      file(p, 1_000);
    expect(check()).toEqual({ status: 1, out: "stale" });
    file("dist/app/cli.js", 2_000);
    file("packages/client/dist/index.js", 2_000);
    expect(check()).toEqual({ status: 0, out: "current" });
    file("src/domain/mac.ts", 3_000);
    expect(check()).toEqual({ status: 1, out: "stale" });
    file("dist/app/cli.js", 4_000);
    file("packages/client/dist/index.js", 4_000);
    file("packages/client/src/client.ts", 5_000);
    expect(check()).toEqual({ status: 1, out: "stale" });
  });

  it("is what npm start runs before serving", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    expect(pkg.scripts.prestart).toBe("node scripts/build-if-stale.mjs");
  });
});

describe("supported Node versions", () => {
  it("the engines range admits the Node these tests run on", () => {
    const { engines } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    const min = /^>=(\d+)\.(\d+)\.(\d+)$/.exec(engines.node);
    expect(min).not.toBeNull();
    const [major, minor, patch] = process.versions.node.split(".").map(Number) as [number, number, number];
    const [, a, b, c] = min!.map(Number) as [number, number, number, number];
    expect(major * 1e6 + minor * 1e3 + patch).toBeGreaterThanOrEqual(a * 1e6 + b * 1e3 + c);
  });
});
