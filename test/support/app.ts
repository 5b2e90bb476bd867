import { MemoryKv } from "../../src/adapters/kv/memory-kv.js";
import { loadConfig, type Config } from "../../src/app/config.js";
import { createApp, type App } from "../../src/app/container.js";
import { silentLogger } from "../../src/app/logger.js";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import type { Clock } from "../../src/ports/clock.js";

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  constructor(public now = 1_780_000_000_000) {}
  nowMs(): number {
    return this.now;
  }
  advance(ms: number): void {
    this.now += ms;
  }
}

/** An app on an in-memory KV and an in-memory SQLite database unless told otherwise. */
export async function testApp(
  env: Record<string, string> = {},
  kv: IdentityKv = new MemoryKv(),
): Promise<{ app: App; clock: ManualClock; config: Config }> {
  const config = loadConfig({
    IDMAP_DATA_DIR: ":memory:",
    IDMAP_LOG_LEVEL: "silent",
    CANONICAL_IDENTITY_MAP_ENABLED: "on",
    ...env,
  });
  const clock = new ManualClock();
  const app = await createApp(config, { clock, logger: silentLogger, kv });
  return { app, clock, config };
}

/** Counts every call an IdentityKv receives, by method. */
export function countingKv(inner: IdentityKv): IdentityKv & { calls: Record<string, number>; reset(): void } {
  const calls: Record<string, number> = {};
  const reset = () => {
    for (const k of Object.keys(calls)) delete calls[k];
  };
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === "calls") return calls;
      if (prop === "reset") return reset;
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== "function" || prop === "watch" || prop === "list" || prop === "close")
        return typeof v === "function" ? v.bind(target) : v;
      return (...args: unknown[]) => {
        calls[String(prop)] = (calls[String(prop)] ?? 0) + 1;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as IdentityKv & { calls: Record<string, number>; reset(): void };
}
