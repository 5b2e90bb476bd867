import { createHash } from "node:crypto";
import { isIP } from "node:net";
import { ConfigError, PermissionDenied, Unauthenticated } from "../domain/errors.js";
import type { CallAuthenticator, Credentials, Principal, Role } from "../ports/identity-service.js";
import type { Config } from "./config.js";

export type { Credentials, Principal };

const ANONYMOUS: Principal = { actor: "anonymous", role: "writer" };

/**
 * Credentials to principal, for both front-ends. A bearer token, when one is sent, decides; otherwise
 * a verified client certificate whose subject is mapped to a role (IDMAP_MTLS_ROLES). `writer` may do
 * everything `reader` may. With no tokens and no subjects configured, auth is off and every caller is
 * an anonymous writer (the server then binds to loopback unless told otherwise: assertSafeExposure).
 */
export class Authenticator implements CallAuthenticator {
  /** sha256(token) hex → role: the table never holds a token, and lookups compare digests. */
  private readonly tokens: ReadonlyMap<string, Role>;

  constructor(
    tokens: ReadonlyMap<string, Role>,
    private readonly subjects: ReadonlyMap<string, Role>,
  ) {
    this.tokens = new Map([...tokens].map(([t, r]) => [sha256(t), r] as const));
  }

  static fromConfig(config: Pick<Config, "authTokens" | "mtlsRoles">): Authenticator {
    return new Authenticator(config.authTokens, config.mtlsRoles);
  }

  get enabled(): boolean {
    return this.tokens.size > 0 || this.subjects.size > 0;
  }

  /** For the start-up log. */
  describe(): string {
    const parts = [
      ...(this.tokens.size > 0 ? ["bearer tokens"] : []),
      ...(this.subjects.size > 0 ? ["mTLS subjects"] : []),
    ];
    return parts.length > 0 ? parts.join(" + ") : "off";
  }

  /** The caller, if allowed to do what `need` requires; Unauthenticated or PermissionDenied otherwise. */
  authorize(creds: Credentials, need: Role): Principal {
    const p = this.authenticate(creds);
    if (need === "writer" && p.role !== "writer")
      throw new PermissionDenied(`role ${p.role} may not do this; it needs the writer role`);
    return p;
  }

  private authenticate(creds: Credentials): Principal {
    if (!this.enabled) return ANONYMOUS;
    const header = (creds.authorization ?? "").trim();
    if (header !== "") {
      const m = /^Bearer\s+(\S+)$/i.exec(header);
      if (!m) throw new Unauthenticated("authorization: expected `Bearer <token>`");
      const digest = sha256(m[1]!);
      const role = this.tokens.get(digest);
      if (!role) throw new Unauthenticated("authorization: unknown bearer token");
      return { actor: `token:${digest.slice(0, 8)}`, role };
    }
    if (creds.peerSubject) {
      const subject = canonicalSubject(creds.peerSubject);
      const role = this.subjects.get(subject);
      if (!role) throw new PermissionDenied(`certificate subject ${subject} has no role (IDMAP_MTLS_ROLES)`);
      return { actor: `cert:${subject}`, role };
    }
    throw new Unauthenticated(
      `credentials required: Authorization: Bearer <token>` +
        `${this.subjects.size > 0 ? " (or, on gRPC, a client certificate)" : ""}`,
    );
  }
}

/**
 * Without auth, the service may listen only on loopback unless IDMAP_ALLOW_UNAUTHENTICATED=true says
 * an open service is intended (e.g. behind a proxy that authenticates). Called before listening.
 */
export function assertSafeExposure(
  config: Pick<Config, "host" | "authTokens" | "mtlsRoles" | "allowUnauthenticated">,
): void {
  if (Authenticator.fromConfig(config).enabled || config.allowUnauthenticated || isLoopback(config.host)) return;
  throw new ConfigError(
    "IDMAP_HOST",
    `${config.host} is not a loopback address and no auth is configured: set IDMAP_AUTH_TOKENS (and/or ` +
      `IDMAP_MTLS_ROLES), ` +
      "or IDMAP_ALLOW_UNAUTHENTICATED=true to serve it open on purpose",
  );
}

export function isLoopback(host: string): boolean {
  const h = host
    .trim()
    .replace(/^\[(.*)\]$/, "$1")
    .toLowerCase();
  if (h === "localhost" || h === "::1") return true;
  return isIP(h) === 4 && h.startsWith("127.");
}

/**
 * One spelling of a distinguished name, so `CN=poller-1,O=Example` in the settings matches the
 * certificate however its attributes are ordered: attribute types upper-cased, pairs sorted, values
 * as written (`\` escapes `,` `;` `=` `\` in both the settings and this form).
 */
export function canonicalSubject(
  subject: string | Readonly<Record<string, string | readonly string[] | undefined>>,
): string {
  const pairs: [string, string][] = [];
  if (typeof subject === "string") {
    for (const rdn of splitEscaped(subject, ",")) {
      const eq = indexUnescaped(rdn, "=");
      if (eq <= 0)
        throw new ConfigError("IDMAP_MTLS_ROLES", `${JSON.stringify(subject)} is not a subject like CN=name,O=org`);
      pairs.push([rdn.slice(0, eq).trim().toUpperCase(), unescapeBackslashes(rdn.slice(eq + 1).trim())]);
    }
  } else {
    for (const [type, v] of Object.entries(subject)) {
      if (v === undefined) continue;
      for (const value of typeof v === "string" ? [v] : v) pairs.push([type.toUpperCase(), value]);
    }
  }
  return pairs
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([t, v]) => `${t}=${v.replace(/[\\,;=]/g, (c) => `\\${c}`)}`)
    .join(",");
}

/** `CN=poller-1,O=Example:reader;CN=registry,O=Example:writer` → canonical subject → role. */
export function parseSubjectRoles(text: string): Map<string, Role> {
  const out = new Map<string, Role>();
  for (const entry of splitEscaped(text, ";")) {
    if (entry.trim() === "") continue;
    const i = entry.lastIndexOf(":");
    const role = entry.slice(i + 1).trim();
    if (i <= 0 || (role !== "reader" && role !== "writer"))
      throw new ConfigError(
        "IDMAP_MTLS_ROLES",
        "each entry must be <subject>:reader or <subject>:writer, separated by ;",
      );
    out.set(canonicalSubject(entry.slice(0, i)), role);
  }
  return out;
}

function sha256(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}

function splitEscaped(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "\\" && i + 1 < s.length) {
      cur += c + s[++i]!;
    } else if (c === sep) {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x !== "");
}

function indexUnescaped(s: string, ch: string): number {
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "\\") i++;
    else if (s[i] === ch) return i;
  }
  return -1;
}

function unescapeBackslashes(s: string): string {
  return s.replace(/\\(.)/g, "$1");
}
