import { afterAll, describe, expect, it } from "vitest";
import type { IdentityKv } from "../../src/ports/identity-kv.js";
import { forBackend } from "../support/backends.js";
import { expectConsistent } from "../support/check.js";
import { prng } from "../support/churn.js";
import { scratchDatabase } from "../support/postgres.js";
import { backendEnv, postUpdates, serviceConfig, startService, type Service } from "../support/service.js";

/**
 * Two and three instances on one KV and one PostgreSQL database, publishing overlapping batches in
 * different orders (defect 5 of issue 12: row upserts in batch order deadlocked between instances,
 * and the batch answered 503 after its KV writes). Every batch must succeed, and the checker must
 * find the map, the device rows and the audit trail in agreement.
 */
const DEVICES = 30;
const ROUNDS = 3;
const BATCH = 10;

function overlapping(run: string, instance: number, round: number, t0: number, seed: number): object[] {
  const random = prng(seed);
  const order = Array.from({ length: DEVICES }, (_, i) => i).sort(() => random() - 0.5);
  return order.map((i) => ({
    device_id: `${run}-d${i}`,
    ip: `10.${40 + round}.${instance}.${i + 1}`,
    partition: "p",
    mac: `0e:00:00:00:${(round * 16 + instance).toString(16).padStart(2, "0")}:${i.toString(16).padStart(2, "0")}`,
    hostname: `h-${round}-${instance}`,
    source: `src-${instance}`,
    metadata: { armis_device_id: `${run}-A${i}` },
    timestamp: t0 + round * 60_000 + instance * 1_000,
  }));
}

for (const backend of ["jetstream", "etcd"] as const) {
  forBackend(backend, () => {
    forBackend("postgres", () => {
      describe(`instances sharing ${backend} and PostgreSQL`, () => {
        const cleanups: (() => Promise<void>)[] = [];
        afterAll(async () => {
          for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
        });

        for (const count of [2, 3]) {
          it(`${count} instances publishing overlapping batches: every batch succeeds, the checker finds nothing`, async () => {
            const db = await scratchDatabase();
            cleanups.push(db.drop);
            const config = serviceConfig(
              {
                ...backendEnv(backend),
                IDMAP_DB: "postgres",
                IDMAP_DATABASE_URL: db.url,
                IDMAP_REQUEST_TIMEOUT: "20s",
              },
              ":memory:",
            );
            const services: Service[] = [];
            for (let i = 0; i < count; i++) services.push(await startService(config));
            cleanups.push(async () => {
              const kv = services[0]!.app.kv as IdentityKv & { destroy?: () => Promise<void> };
              await kv.destroy?.();
              for (const s of services) await s.close();
            });
            const run = `sp${count}${Math.random().toString(16).slice(2, 6)}`;
            const t0 = Date.now() - 10 * 60_000;
            const refused: string[] = [];
            const outcomes: string[] = [];
            for (let round = 0; round < ROUNDS; round++) {
              await Promise.all(
                services.map(async (s, i) => {
                  const updates = overlapping(run, i, round, t0, round * 10 + i + 1);
                  for (let b = 0; b < updates.length; b += BATCH) {
                    const r = await postUpdates(s.rest, updates.slice(b, b + BATCH));
                    if (r.status !== 200) refused.push(`${r.status} ${r.body.error?.code}: ${r.body.error?.message}`);
                    else for (const x of r.body.results) outcomes.push(x.outcome);
                  }
                }),
              );
            }
            expect(refused).toEqual([]);
            expect(outcomes.filter((o) => o === "failed")).toEqual([]);
            await expectConsistent(services[0]!.app.kv, config.namespace, [services[0]!.app.devices], run);
          }, 120_000);
        }
      });
    });
  });
}
