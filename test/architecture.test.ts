import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "src");

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

const IMPORT = /(?:from\s+|import\s*\(\s*|require\s*\(\s*|^\s*import\s+)["']([^"']+)["']/gm;

type Layer = "domain" | "ports" | "adapters" | "client" | "app" | "index";

/** What each layer may import from src/ (besides itself). Packages are allowed except in domain and ports. */
const ALLOWED: Readonly<Record<Layer, readonly Layer[]>> = {
  domain: [],
  ports: ["domain"],
  adapters: ["ports", "domain"],
  client: ["ports", "domain"],
  app: ["adapters", "ports", "domain", "client"],
  index: ["app", "adapters", "ports", "domain", "client"],
};

/** Outside packages a layer may use: domain is pure (node:crypto for hashing only); ports are types. */
const PACKAGES: Readonly<Partial<Record<Layer, (spec: string) => boolean>>> = {
  domain: (spec) => spec === "node:crypto",
  ports: () => false,
};

function layerOf(file: string): Layer {
  const top = relative(src, file).split(sep)[0]!;
  return top.endsWith(".ts") ? "index" : (top as Layer);
}

/** Every import in `text` (a file at `file`) that its layer may not make. */
function offences(file: string, text: string): string[] {
  const layer = layerOf(file);
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1]!;
    if (!spec.startsWith(".")) {
      const allowed = PACKAGES[layer];
      if (allowed && !allowed(spec)) out.push(`${relative(root, file)} imports ${spec}`);
      continue;
    }
    const target = resolve(dirname(file), spec);
    if (!(target + sep).startsWith(src + sep)) {
      out.push(`${relative(root, file)} imports ${spec} (outside src)`);
      continue;
    }
    const to = layerOf(target);
    if (to !== layer && !ALLOWED[layer].includes(to)) out.push(`${relative(root, file)} imports ${spec} (${to})`);
  }
  return out;
}

/** A reach into a BindingStore's cache or KV: only src/app/bindings/ may do that. */
const STORE_INTERNALS = /\bstore\??\.(cache|kv)\b/;

describe("dependency rule", () => {
  const all = files(src);

  it("every layer imports only what it may: domain nothing, ports domain, adapters and client ports and domain", () => {
    const found = all.flatMap((f) => offences(f, readFileSync(f, "utf8")));
    expect(found).toEqual([]);
    // src/client is now two files (key derivation and the re-export of packages/client).
    for (const layer of ["domain", "ports", "adapters", "client", "app"] as const)
      expect(all.filter((f) => layerOf(f) === layer).length).toBeGreaterThan(layer === "client" ? 1 : 2);
  });

  it("the client package imports nothing outside itself: no server code, no package", () => {
    const pkg = join(root, "packages/client/src");
    const own = files(pkg);
    expect(own.length).toBeGreaterThan(3);
    const outside = own.flatMap((f) =>
      [...readFileSync(f, "utf8").matchAll(IMPORT)]
        .map((m) => m[1]!)
        .filter((spec) => !spec.startsWith(".") || !resolve(dirname(f), spec).startsWith(pkg + sep))
        .map((spec) => `${relative(root, f)} imports ${spec}`),
    );
    expect(outside).toEqual([]);
  });

  it("the check itself catches an outside import", () => {
    const sample = 'import { x } from "../ports/metrics.js";\nimport fastify from "fastify";';
    expect([...sample.matchAll(IMPORT)].map((m) => m[1])).toEqual(["../ports/metrics.js", "fastify"]);
  });

  it("the check flags each kind of violation and passes allowed imports", () => {
    const at = (p: string) => join(src, p);
    expect(offences(at("domain/x.ts"), 'import fastify from "fastify";')).toHaveLength(1);
    expect(offences(at("domain/x.ts"), 'import { createHash } from "node:crypto";')).toEqual([]);
    expect(offences(at("domain/x.ts"), 'import type { Clock } from "../ports/clock.js";')).toHaveLength(1);
    expect(offences(at("ports/x.ts"), 'import type { App } from "../app/container.js";')).toHaveLength(1);
    expect(offences(at("ports/x.ts"), 'import type { Binding } from "../domain/binding.js";')).toEqual([]);
    expect(offences(at("adapters/rest/x.ts"), 'import type { App } from "../../app/container.js";')).toHaveLength(1);
    expect(offences(at("adapters/rest/x.ts"), 'const m = await import("../../app/tls.js");')).toHaveLength(1);
    expect(offences(at("adapters/rest/x.ts"), 'import type { Logger } from "../../ports/logger.js";')).toEqual([]);
    expect(offences(at("client/x.ts"), 'export type { A } from "../app/publish/publish-service.js";')).toHaveLength(1);
    expect(offences(at("client/x.ts"), 'import { x } from "../../test/support/app.js";')).toHaveLength(1);
    expect(offences(at("app/x.ts"), 'import { buildRestApp } from "../adapters/rest/rest-app.js";')).toEqual([]);
  });

  it("the binding store is the only way into the map: nobody outside src/app/bindings/ touches its cache or KV", () => {
    const bindings = join(src, "app", "bindings") + sep;
    const found = all
      .filter((f) => !f.startsWith(bindings))
      .flatMap((f) =>
        readFileSync(f, "utf8")
          .split("\n")
          .flatMap((line, i) => (STORE_INTERNALS.test(line) ? [`${relative(root, f)}:${i + 1}`] : [])),
      );
    expect(found).toEqual([]);
    expect(STORE_INTERNALS.test("const c = this.deps.store.cache?.peek(p);")).toBe(true);
    expect(STORE_INTERNALS.test("new BindingStore(store.kv, ns)")).toBe(true);
    expect(STORE_INTERNALS.test("store.peekPath(p)")).toBe(false);
  });
});
