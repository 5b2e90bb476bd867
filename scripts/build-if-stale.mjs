// `npm start` runs this first: it compiles only when a source is newer than the compiled output, so a
// start with a current build serves at once instead of spending seconds in tsc.
import { execFileSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

// --check: only say "current" (exit 0) or "stale" (exit 1); --root: another tree (tests).
const args = process.argv.slice(2);
const checkOnly = args.includes("--check");
const rootAt = args.indexOf("--root");
const root = rootAt >= 0 ? args[rootAt + 1] : fileURLToPath(new URL("..", import.meta.url));

/** The newest modification time under `path` (a file or a directory of .ts files), 0 when absent. */
function newest(path) {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let max = 0;
  for (const e of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, e.name);
    if (e.isDirectory() || e.name.endsWith(".ts")) max = Math.max(max, newest(p));
  }
  return max;
}

const inputs = ["src", "packages/client/src", "tsconfig.json", "packages/client/tsconfig.json", "package.json"];
const outputs = ["dist/app/cli.js", "packages/client/dist/index.js"];
const built = Math.min(...outputs.map((o) => newest(join(root, o))));
const source = Math.max(...inputs.map((i) => newest(join(root, i))));
const stale = built === 0 || source > built;
if (checkOnly) {
  process.stdout.write(stale ? "stale\n" : "current\n");
  process.exit(stale ? 1 : 0);
}
if (stale) {
  process.stderr.write("idmap: compiling (sources changed since the last build)\n");
  execFileSync("npm", ["run", "build"], { cwd: root, stdio: "inherit" });
}
