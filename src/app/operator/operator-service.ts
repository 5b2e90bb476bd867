import { randomUUID } from "node:crypto";
import { isLive, type Binding, type BindingChange, type Revision } from "../../domain/binding.js";
import { InvalidArgument, RetryExhausted, RevisionConflict } from "../../domain/errors.js";
import { parseKind } from "../../domain/identity-kind.js";
import { keyId, type IdentityKey } from "../../domain/identity-key.js";
import { deviceIdKey, indexReads, type OperatorPlan } from "../../domain/operator/device-state.js";
import { planMerge } from "../../domain/operator/merge.js";
import { planPin, planUnpin } from "../../domain/operator/pin.js";
import { planSplit, splitDeviceId } from "../../domain/operator/split.js";
import { identityOf } from "../../domain/record.js";
import type { Clock, DeviceStore, HistoryPage, Metrics } from "../../ports/index.js";
import type { DeviceDetail, OperatorResult, OperatorUseCase, PublishUseCase } from "../../ports/identity-service.js";
import type { LookupUseCase } from "../../ports/identity-service.js";
import type { BindingStore } from "../bindings/binding-store.js";
import type { Logger } from "../logger.js";
import { normalizeKeyValue } from "../lookup/lookup-service.js";
import { logBindingChange } from "../bindings/audit-line.js";

export interface OperatorDeps {
  readonly store: BindingStore;
  readonly devices: DeviceStore;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly weakKeyTtlMs: number;
  readonly lookup: LookupUseCase;
  readonly publish: PublishUseCase;
}

/** How many times a decision is read and planned again when a sighting changed a binding meanwhile. */
const ATTEMPTS = 5;

/**
 * An operator's manual decisions (ADR 0016). Each is read, planned by the domain (src/domain/operator),
 * and applied write by write, every write conditional on the revision read; a sighting that changed a
 * binding meanwhile makes it read and plan again (keys already moved count as moved). Every change
 * that landed is audited with the operator's actor name, logged and counted, like a publish's.
 */
export class OperatorService implements OperatorUseCase {
  private seq = 0;
  private readonly instance = randomUUID().slice(0, 8);

  constructor(private readonly deps: OperatorDeps) {}

  async merge(deviceId: string, into: string, actor: string): Promise<OperatorResult> {
    const from = deviceIdOf(deviceId, "device_id");
    const to = deviceIdOf(into, "into");
    const changes = await this.decide([from, to], [], (loaded, ctx) => planMerge(from, to, loaded, ctx), actor);
    const now = this.deps.clock.nowMs();
    await this.deps.devices.recordTombstones([{ deviceId: from, mergedInto: to, key: null, atMs: now, actor }]);
    return { deviceId: to, moved: changes.map((c) => c.key) };
  }

  async split(
    deviceId: string,
    keys: readonly { kind: string; value: string }[],
    actor: string,
  ): Promise<OperatorResult> {
    const id = deviceIdOf(deviceId, "device_id");
    if (!Array.isArray(keys) || keys.length === 0)
      throw new InvalidArgument("keys", "name at least one key to split off");
    const parsed = keys.map((k, i) => keyOf(k, `keys[${i}]`));
    const newId = splitDeviceId(id, parsed);
    let created = newId;
    const changes = await this.decide(
      [id, newId],
      parsed,
      (loaded, ctx) => {
        const plan = planSplit(id, parsed, loaded, ctx);
        created = plan.newDeviceId;
        return plan;
      },
      actor,
    );
    await this.recordSplitRows(id, created, parsed);
    return { deviceId: created, moved: changes.filter((c) => c.key.value !== created).map((c) => c.key) };
  }

  async pin(deviceId: string, key: { kind: string; value: string }, actor: string): Promise<void> {
    const id = deviceIdOf(deviceId, "device_id");
    const k = keyOf(key, "key");
    await this.decide([id], [k], (loaded, ctx) => planPin(id, k, loaded, ctx), actor);
  }

  async unpin(deviceId: string, key: { kind: string; value: string }, actor: string): Promise<void> {
    const id = deviceIdOf(deviceId, "device_id");
    const k = keyOf(key, "key");
    await this.decide([id], [k], (loaded, ctx) => planUnpin(id, k, loaded, ctx), actor);
  }

  async pinConflicts(limit: number): Promise<HistoryPage["entries"]> {
    return (await this.deps.devices.pinConflicts({ limit })).entries;
  }

  async detail(deviceId: string): Promise<DeviceDetail> {
    const view = await this.deps.lookup.device(deviceId);
    const canonical = view.redirectedTo ?? view.deviceId;
    const got = view.revision > 0 ? await this.deps.store.getMany(view.keys) : view.keys.map(() => null);
    const keys = view.keys.map((key, i) => {
      const pin = got[i]?.record.pin;
      return pin ? { key, pin } : { key };
    });
    const latest = (await this.deps.devices.getDevice(canonical)) ?? undefined;
    const explanation = latest
      ? (
          await this.deps.publish.resolve(
            [
              {
                device_id: latest.deviceId,
                ...(latest.ip ? { ip: latest.ip } : {}),
                ...(latest.partition ? { partition: latest.partition } : {}),
                ...(latest.macs.length ? { mac: latest.macs.join(",") } : {}),
                ...(latest.hostname ? { hostname: latest.hostname } : {}),
                ...(latest.source ? { source: latest.source } : {}),
                metadata: sightingMetadata(latest.armisId, latest.netboxIds),
              },
            ],
            { explain: true },
          )
        )[0]
      : undefined;
    return {
      view,
      keys,
      redirectsIn: view.keys.filter((k) => k.kind === "device-id" && k.value !== canonical).map((k) => k.value),
      provisional: (view.record.provisionalSinceMs ?? 0) > 0,
      ...(latest ? { latest } : {}),
      ...(explanation ? { explanation } : {}),
    };
  }

  /**
   * Reads the devices and keys, plans, applies the writes in order; on a conflict, reads and plans
   * again. Returns the changes that landed (over every attempt), audited once at the end.
   */
  private async decide(
    ids: readonly string[],
    keys: readonly IdentityKey[],
    plan: (loaded: ReadonlyMap<string, Binding | null>, ctx: PlanContext) => OperatorPlan,
    actor: string,
  ): Promise<BindingChange[]> {
    const landed = new Map<string, { change: BindingChange; revision: Revision | null }>();
    // Journaled before the writes, settled with the audit rows (ADR 0017): a crash between them loses no row.
    const journaled: string[] = [];
    try {
      for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
        const loaded = new Map<string, Binding | null>();
        await this.load([...ids.map(deviceIdKey), ...keys], loaded);
        await this.load(indexReads(ids, loaded), loaded);
        const nowMs = this.deps.clock.nowMs();
        const operationId = `op-${this.instance}-${++this.seq}`;
        const p = plan(loaded, { actor, nowMs, operationId });
        if (p.changes.length > 0) {
          await this.deps.devices.journalIntents([{ operationId, atMs: nowMs, actor, changes: p.changes }]);
          journaled.push(operationId);
        }
        try {
          for (const w of p.writes) {
            const revision = await this.deps.store.apply(w, this.deps.weakKeyTtlMs);
            for (const c of p.changes)
              if (keyId(c.key) === keyId(w.key) && !landed.has(keyId(c.key)))
                landed.set(keyId(c.key), { change: c, revision });
          }
          return [...landed.values()].map((l) => l.change);
        } catch (e) {
          if (!(e instanceof RevisionConflict)) throw e;
          this.deps.metrics.conflict("revision_mismatch");
        }
      }
      throw new RetryExhausted([`operator decision after ${ATTEMPTS} attempts`]);
    } finally {
      await this.audit([...landed.values()], actor, journaled);
    }
  }

  private async load(keys: readonly IdentityKey[], into: Map<string, Binding | null>): Promise<void> {
    const todo = keys.filter((k, i) => !into.has(keyId(k)) && keys.findIndex((x) => keyId(x) === keyId(k)) === i);
    if (todo.length === 0) return;
    const got = await this.deps.store.getMany(todo);
    todo.forEach((k, i) => {
      into.set(keyId(k), got[i] ?? null);
    });
  }

  private async audit(
    landed: readonly { change: BindingChange; revision: Revision | null }[],
    actor: string,
    settles: readonly string[],
  ) {
    if (landed.length === 0 && settles.length === 0) return;
    const atMs = this.deps.clock.nowMs();
    for (const { change: c, revision } of landed) {
      this.deps.metrics.bindingChange(c.reason, c.key.kind);
      logBindingChange(this.deps.log, actor, c, revision);
    }
    await this.deps.devices.appendAudit(
      landed.map(({ change: c, revision }) => ({
        atMs,
        actor,
        key: c.key,
        fromDeviceId: c.fromDeviceId,
        toDeviceId: c.toDeviceId,
        revision,
        reason: c.reason,
      })),
      settles,
    );
  }

  /** The relational rows follow the split: the old device loses the identifiers, the new one is a row. */
  private async recordSplitRows(oldId: string, newId: string, keys: readonly IdentityKey[]): Promise<void> {
    const now = this.deps.clock.nowMs();
    const [oldBinding] = await this.deps.store.getMany([deviceIdKey(oldId)]);
    const [newBinding] = await this.deps.store.getMany([deviceIdKey(newId)]);
    const old = await this.deps.devices.getDevice(oldId);
    const rows = [];
    if (old && isLive(oldBinding, now)) {
      const id = identityOf(oldBinding.record);
      rows.push({ ...old, macs: id.macs, armisId: id.armisId, netboxIds: id.netboxIds });
    }
    if (isLive(newBinding, now)) {
      const id = identityOf(newBinding.record);
      const ip = keys.find((k) => k.kind === "ip")?.value ?? "";
      const prior = await this.deps.devices.getDevice(newId);
      rows.push({
        deviceId: newId,
        canonicalDeviceId: newId,
        mergedInto: null,
        partition: newBinding.record.partition,
        ip,
        macs: id.macs,
        armisId: id.armisId,
        netboxIds: id.netboxIds,
        hostname: id.hostname,
        source: "operator",
        firstSeenMs: prior?.firstSeenMs ?? now,
        lastSeenMs: now,
        metadata: {},
        provisional: false,
      });
    }
    await this.deps.devices.upsertDevices(rows);
  }
}

interface PlanContext {
  readonly actor: string;
  readonly nowMs: number;
  readonly operationId: string;
}

function deviceIdOf(raw: string, field: string): string {
  const id = typeof raw === "string" ? raw.trim() : "";
  if (id === "") throw new InvalidArgument(field, "must name a device id");
  return id;
}

/** A key as an operator names it, in any notation (a MAC with dashes, an IP with a partition). */
function keyOf(k: { kind: string; value: string }, field: string): IdentityKey {
  const kind = parseKind(String(k?.kind ?? ""));
  if (!kind) throw new InvalidArgument(`${field}.kind`, `unknown kind ${JSON.stringify(k?.kind)}`);
  return { kind, value: normalizeKeyValue(kind, String(k.value ?? ""), `${field}.value`) };
}

function sightingMetadata(armisId: string, netboxIds: readonly string[]): Record<string, string> {
  const m: Record<string, string> = {};
  if (armisId) m.armis_device_id = armisId;
  if (netboxIds.length > 0) {
    m.integration_type = "netbox";
    m.integration_id = netboxIds[0]!;
  }
  return m;
}
