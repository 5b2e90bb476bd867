import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const domain = join(root, "src", "domain");

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

const IMPORT = /(?:from\s+|import\s*\(\s*|require\s*\(\s*|^\s*import\s+)["']([^"']+)["']/gm;

describe("dependency rule", () => {
  it("src/domain imports only src/domain (node:crypto aside), with no exceptions listed", () => {
    const offences: string[] = [];
    for (const f of files(domain)) {
      for (const m of readFileSync(f, "utf8").matchAll(IMPORT)) {
        const spec = m[1]!;
        if (spec === "node:crypto") continue;
        const inside = spec.startsWith(".") && (resolve(dirname(f), spec) + sep).startsWith(domain + sep);
        if (!inside) offences.push(`${relative(root, f)} imports ${spec}`);
      }
    }
    expect(offences).toEqual([]);
    expect(files(domain).length).toBeGreaterThan(5);
  });

  it("the check itself catches an outside import", () => {
    const sample = 'import { x } from "../ports/metrics.js";\nimport fastify from "fastify";';
    expect([...sample.matchAll(IMPORT)].map((m) => m[1])).toEqual(["../ports/metrics.js", "fastify"]);
  });
});
