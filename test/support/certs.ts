import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Pem {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TestPki {
  readonly dir: string;
  readonly ca: Pem;
  readonly server: Pem;
  /** Client certificates by name, signed by `ca` unless named `untrusted-*` (signed by another CA). */
  readonly clients: Readonly<Record<string, Pem>>;
  cleanup(): void;
}

const OPENSSL = "/usr/bin/openssl";
const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/**
 * A throwaway PKI made with openssl: a CA, a server certificate for 127.0.0.1 and localhost, and
 * client certificates with the given subjects (`/O=Example/CN=poller-1`). EC keys keep it fast.
 */
export function makePki(clients: Record<string, string>): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "idmap-pki-"));
  const run = (...args: string[]) => execFileSync(OPENSSL, args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  const pem = (name: string): Pem => ({
    cert: readFileSync(join(dir, `${name}.crt`)),
    key: readFileSync(join(dir, `${name}.key`)),
    certFile: join(dir, `${name}.crt`),
    keyFile: join(dir, `${name}.key`),
  });
  const ca = (name: string, subject: string) =>
    run("req", "-x509", ...EC, "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", subject);
  const leaf = (name: string, subject: string, caName: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    run("req", ...EC, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject);
    run(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${caName}.crt`,
      "-CAkey",
      `${caName}.key`,
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      "2",
      "-extfile",
      `${name}.ext`,
    );
  };
  ca("ca", "/CN=identity-map test CA");
  ca("other-ca", "/CN=someone else's CA");
  leaf("server", "/CN=localhost", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  for (const [name, subject] of Object.entries(clients)) {
    leaf(name, subject, name.startsWith("untrusted-") ? "other-ca" : "ca", "extendedKeyUsage=clientAuth\n");
  }
  return {
    dir,
    ca: pem("ca"),
    server: pem("server"),
    clients: Object.fromEntries(Object.keys(clients).map((n) => [n, pem(n)])),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
