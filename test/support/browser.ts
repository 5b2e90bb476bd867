import { existsSync } from "node:fs";

/**
 * The Chromium the console tests drive: Debian's `chromium` package (.ci/run installs it when
 * missing), or the one IDMAP_TEST_CHROMIUM names. No browser is ever downloaded. Missing, the test
 * fails and says how to install it: it is never skipped.
 */
export function chromiumPath(): string {
  const path = process.env.IDMAP_TEST_CHROMIUM ?? "/usr/bin/chromium";
  if (!existsSync(path))
    throw new Error(`no Chromium at ${path}: apt-get install -y chromium (or set IDMAP_TEST_CHROMIUM)`);
  return path;
}
