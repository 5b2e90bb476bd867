import { Type, type Static, type TSchema } from "typebox";
import { CHANGE_REASONS } from "../../domain/binding.js";
import { IDENTITY_KINDS, KIND_PROTO_NAME } from "../../domain/identity-kind.js";

/*
 * JSON shapes of the REST API, in snake_case. They also feed /openapi.json: every shape with an `$id`
 * is registered once (NAMED_SCHEMAS) and referenced with `ref`, so the document names it under
 * components/schemas and generated clients get a named type for it.
 */

/** A reference to a registered schema that keeps the schema's static type for the type provider. */
export function ref<T extends TSchema>(schema: T, description?: string) {
  const id = (schema as { $id?: unknown }).$id;
  if (typeof id !== "string") throw new Error("ref: the schema has no $id");
  return Type.Unsafe<Static<T>>({ $ref: `${id}#`, ...(description ? { description } : {}) });
}

/** A string enum the document types as `string` (openapi-typescript then emits a union of literals). */
function stringEnum<const V extends readonly string[]>(values: V, options: { description?: string } = {}) {
  return Type.Unsafe<V[number]>({ type: "string", enum: [...values], ...options });
}

const Kind = stringEnum([...IDENTITY_KINDS], { description: "Identity kind, strongest first: armis-id ... device-id" });
const KindIn = stringEnum([...IDENTITY_KINDS, ...Object.values(KIND_PROTO_NAME)], {
  description: "A kind name (`mac`) or its proto enum name (`IDENTITY_KIND_MAC`)",
});

export const DeviceUpdateSchema = Type.Object(
  {
    device_id: Type.Optional(
      Type.String({ description: "The source's id for the device; defaults to <partition>:<ip>" }),
    ),
    ip: Type.Optional(Type.String({ description: "IPv4 or IPv6; a /32 or /128 suffix is stripped" })),
    partition: Type.Optional(Type.String({ description: "Network partition (site, VRF) the IP belongs to" })),
    mac: Type.Optional(Type.String({ description: "One MAC or a list separated by , ; space tab or newline" })),
    hostname: Type.Optional(Type.String()),
    source: Type.Optional(Type.String({ description: "armis, netbox, sweep, agent, ..." })),
    metadata: Type.Optional(
      Type.Record(Type.String(), Type.String(), {
        description: "armis_device_id, integration_type + integration_id / netbox_device_id become identity keys",
      }),
    ),
    timestamp: Type.Optional(
      Type.Union([Type.String(), Type.Number()], { description: "Observation time: RFC 3339 or Unix milliseconds" }),
    ),
  },
  {
    $id: "DeviceUpdate",
    description: "One sighting of a device by a source",
    examples: [
      {
        device_id: "site-1:10.1.0.5",
        ip: "10.1.0.5",
        partition: "site-1",
        mac: "00:1A:2B:3C:4D:5E",
        hostname: "printer-7",
        source: "armis",
        metadata: { armis_device_id: "ARM-77" },
        timestamp: "2026-12-01T09:30:00Z",
      },
    ],
  },
);
export type DeviceUpdateBody = Static<typeof DeviceUpdateSchema>;

export const IdentityKeySchema = Type.Object(
  { kind: KindIn, value: Type.String() },
  {
    $id: "IdentityKey",
    description: "An identifier to look up",
    examples: [{ kind: "mac", value: "00:1A:2B:3C:4D:5E" }],
  },
);

export const BoundKeySchema = Type.Object(
  { kind: Kind, value: Type.String({ description: "Normalized: MACs upper-case colon form, IPs canonical" }) },
  { $id: "BoundKey", description: "An identity key as the map stores it" },
);

export const ErrorSchema = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: "invalid_argument, not_found, unauthenticated, kv_unavailable, ..." }),
      message: Type.String(),
      field: Type.Optional(Type.String({ description: "The request field at fault, e.g. updates[0].ip" })),
      candidates: Type.Optional(
        Type.Array(Type.String(), { description: "ambiguous_identifier: the devices the identifier names" }),
      ),
      reason: Type.Optional(Type.String({ description: "Why a store is unavailable, where known: no_quorum" })),
      revision: Type.Optional(
        Type.Integer({ description: "revision_compacted (410): the store's newest revision; take a new snapshot" }),
      ),
    }),
  },
  { $id: "Error", examples: [{ error: { code: "invalid_argument", message: "updates: required", field: "updates" } }] },
);

export const RecordSchema = Type.Object(
  {
    canonical_device_id: Type.String(),
    partition: Type.String(),
    metadata_hash: Type.String({ description: "SHA-256, lower-case hex" }),
    updated_at_unix_millis: Type.Integer(),
    attributes: Type.Record(Type.String(), Type.String(), { description: "Strong identifiers and hostname" }),
    provisional: Type.Boolean({
      description: "The device only ever carried addresses (sweeps, pings): an asserting update there takes it over",
    }),
  },
  { $id: "CanonicalRecord" },
);

const RejectedSchema = Type.Object(
  {
    field: Type.String(),
    value: Type.String(),
    reason: Type.String({ description: "invalid_mac, invalid_ip, too_long, non_identifying_mac, ..." }),
  },
  { $id: "RejectedIdentifier", description: "An identifier that failed validation; the valid ones were still used" },
);
const TombstoneSchema = Type.Object(
  { device_id: Type.String(), merged_into: Type.String() },
  { $id: "Tombstone", description: "device_id was merged into merged_into and now redirects to it" },
);

export const PublishBody = Type.Object(
  { updates: Type.Array(ref(DeviceUpdateSchema), { minItems: 1 }) },
  { $id: "PublishRequest" },
);

const PublishResultSchema = Type.Object(
  {
    device_id: Type.String(),
    canonical_device_id: Type.Union([Type.String(), Type.Null()]),
    matched_by: Type.Union([Kind, Type.Null()], { description: "The kind of key that named the canonical device" }),
    outcome: stringEnum(["created", "updated", "unchanged", "rejected", "failed"], {
      description: "rejected: nothing in the update identifies a device; failed: see error",
    }),
    tombstone: Type.Optional(ref(TombstoneSchema)),
    merged_device_ids: Type.Optional(Type.Array(Type.String())),
    rejected_identifiers: Type.Optional(Type.Array(ref(RejectedSchema))),
    error: Type.Optional(
      Type.Object({ code: Type.String(), message: Type.String(), keys: Type.Optional(Type.Array(Type.String())) }),
    ),
  },
  { $id: "PublishResult" },
);
export const PublishReply = Type.Object(
  { results: Type.Array(ref(PublishResultSchema), { description: "One per update, in request order" }) },
  { $id: "PublishReply" },
);

export const ResolveBody = Type.Object(
  {
    updates: Type.Array(ref(DeviceUpdateSchema), { minItems: 1 }),
    explain: Type.Optional(Type.Boolean({ description: "Add each decision's trace" })),
  },
  { $id: "ResolveRequest" },
);

const TraceKey = Type.Object({ kind: Kind, value: Type.String() });

const DecisionTraceSchema = Type.Object(
  {
    candidates: Type.Array(
      Type.Object({
        device_id: Type.String(),
        key: TraceKey,
        verdict: stringEnum(["chosen", "vetoed", "stale_link", "named_elsewhere"]),
        provisional: Type.Boolean(),
        differing: Type.Optional(
          Type.Array(Type.Object({ kind: Type.String(), update: Type.String(), device: Type.String() })),
        ),
      }),
    ),
    provisional: Type.Optional(
      Type.Object({
        action: stringEnum(["take_over", "absorbed", "absorption_refused"]),
        device_id: Type.String(),
        reason: Type.Optional(Type.String({ description: "two_places or veto, when refused" })),
      }),
    ),
    own_id: Type.Optional(
      Type.String({ description: "redirect, already_redirects, merged, kept_apart, pinned_apart" }),
    ),
    quarantined_ignored: Type.Optional(
      Type.Array(TraceKey, {
        description: "The update's quarantined (shared) identifiers: they linked, merged and moved nothing",
      }),
    ),
    quarantined: Type.Optional(
      Type.Array(TraceKey, { description: "Identifiers this update found shared and quarantined" }),
    ),
    contested: Type.Optional(
      Type.Array(TraceKey, {
        description:
          "MACs another device holds from a report as new or newer than this one: not moved, but ambiguous " +
          "in lookups for the shared-identifier window",
      }),
    ),
    rule: Type.String({
      description:
        "strongest_bound_key, stable_id, address, address_derived_id, provisional_take_over, " +
        "joined_concurrent_create, new_device, derived_id",
    }),
  },
  { $id: "DecisionTrace", description: "Why the decision was made: candidates, vetoes, the rule that chose" },
);

export const ResolveResultSchema = Type.Object(
  {
    device_id: Type.String(),
    canonical_device_id: Type.Union([Type.String(), Type.Null()]),
    canonical_partition: Type.Union([Type.String(), Type.Null()]),
    canonical_metadata_hash: Type.Union([Type.String(), Type.Null()]),
    canonical_revision: Type.Union([Type.Integer(), Type.Null()]),
    matched_by: Type.Union([Kind, Type.Null()]),
    rejected_identifiers: Type.Optional(Type.Array(ref(RejectedSchema))),
    trace: Type.Optional(ref(DecisionTraceSchema)),
  },
  { $id: "ResolveResult" },
);
export const ResolveReply = Type.Object({ results: Type.Array(ref(ResolveResultSchema)) }, { $id: "ResolveReply" });

export const LookupBody = Type.Object(
  {
    identity_keys: Type.Array(ref(IdentityKeySchema), { description: "Tried in the order given" }),
    ip_hint: Type.Optional(Type.String()),
    namespace: Type.Optional(Type.String()),
  },
  { $id: "LookupRequest" },
);

export const LookupReply = Type.Object(
  {
    found: Type.Boolean(),
    record: Type.Optional(ref(RecordSchema)),
    matched_key: Type.Optional(ref(BoundKeySchema)),
    revision: Type.Integer({
      description: "KV revision of the matched binding; 0 when answered by the relational store",
    }),
    hydrated: Type.Boolean({ description: "True when a relational answer was written back to the KV" }),
    ambiguous: Type.Optional(
      Type.Object(
        {
          key: Type.Object({ kind: Kind, value: Type.String() }),
          candidates: Type.Array(Type.String()),
        },
        { description: "found is false: the key is a quarantined (shared) identifier naming these devices" },
      ),
    ),
  },
  { $id: "LookupResult" },
);

export const LookupQuery = Type.Object({
  mac: Type.Optional(Type.String({ examples: ["00:1A:2B:3C:4D:5E"] })),
  ip: Type.Optional(Type.String({ examples: ["10.1.0.5"] })),
  partition: Type.Optional(Type.String({ examples: ["site-1"] })),
  armis_id: Type.Optional(Type.String()),
  netbox_id: Type.Optional(Type.String()),
  device_id: Type.Optional(Type.String()),
  at: Type.Optional(
    Type.String({
      format: "date-time",
      description: "As of this time (RFC 3339): the device that held the identifier then, from the audit trail",
      examples: ["2026-12-03T14:05:00Z"],
    }),
  ),
});

export const BatchLookupBody = Type.Object(
  {
    lookups: Type.Array(
      Type.Object({ identity_keys: Type.Array(ref(IdentityKeySchema)), ip_hint: Type.Optional(Type.String()) }),
      { minItems: 1 },
    ),
    namespace: Type.Optional(Type.String()),
  },
  { $id: "BatchLookupRequest" },
);
export const BatchLookupReply = Type.Object(
  { results: Type.Array(ref(LookupReply), { description: "One per lookup, in request order" }) },
  { $id: "BatchLookupReply" },
);

export const DeviceParams = Type.Object({ device_id: Type.String({ examples: ["site-1:10.1.0.5"] }) });

export const DeviceReply = Type.Object(
  {
    device_id: Type.String(),
    redirected_to: Type.Optional(Type.String({ description: "Set when the id was merged into another device" })),
    record: ref(RecordSchema),
    revision: Type.Integer(),
    keys: Type.Array(ref(BoundKeySchema)),
  },
  { $id: "CanonicalDevice" },
);

export const HistoryQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, description: "Entries per page (default 50)" })),
  before: Type.Optional(Type.Integer({ minimum: 1, description: "The `next` cursor of the previous page" })),
});

export const HistoryEntrySchema = Type.Object(
  {
    id: Type.Integer(),
    at_unix_millis: Type.Integer(),
    actor: Type.String({
      description: "Who: token:<sha256 prefix>, cert:<subject>, compaction, hydration, anonymous, ...",
    }),
    key: ref(BoundKeySchema),
    from_device_id: Type.Union([Type.String(), Type.Null()]),
    to_device_id: Type.Union([Type.String(), Type.Null()]),
    revision: Type.Union([Type.Integer(), Type.Null()]),
    reason: stringEnum(CHANGE_REASONS),
  },
  { $id: "HistoryEntry" },
);

export const HistoryReply = Type.Object(
  {
    device_id: Type.String(),
    entries: Type.Array(ref(HistoryEntrySchema), { description: "Newest first" }),
    next: Type.Optional(
      Type.Integer({ description: "Pass as `before` for the next (older) page; absent on the last page" }),
    ),
  },
  { $id: "HistoryReply" },
);

export const DeviceListQuery = Type.Object({
  partition: Type.Optional(Type.String({ examples: ["site-1"] })),
  source: Type.Optional(Type.String({ description: "The source of the latest sighting", examples: ["armis"] })),
  hostname: Type.Optional(Type.String()),
  updated_since: Type.Optional(
    Type.String({ format: "date-time", description: "Last seen at or after this time (RFC 3339)" }),
  ),
  provisional: Type.Optional(
    Type.Boolean({ description: "true: only devices known by their address alone; false: only the others" }),
  ),
  cursor: Type.Optional(Type.String({ description: "The `next_cursor` of the previous page" })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: "Devices per page (default 100)" })),
});

export const ListedDeviceSchema = Type.Object(
  {
    device_id: Type.String(),
    partition: Type.String(),
    ip: Type.String(),
    hostname: Type.String(),
    source: Type.String({ description: "The source of the latest sighting" }),
    provisional: Type.Boolean({ description: "Known by its address alone: an asserting sighting may take it over" }),
    first_seen_unix_millis: Type.Integer(),
    last_seen_unix_millis: Type.Integer(),
    keys: Type.Array(ref(BoundKeySchema), { description: "Its device-id first, then strongest first" }),
  },
  {
    $id: "ListedDevice",
    examples: [
      {
        device_id: "site-1:10.1.0.5",
        partition: "site-1",
        ip: "10.1.0.5",
        hostname: "printer-7",
        source: "armis",
        provisional: false,
        first_seen_unix_millis: 1_764_581_400_000,
        last_seen_unix_millis: 1_764_581_400_000,
        keys: [
          { kind: "device-id", value: "site-1:10.1.0.5" },
          { kind: "armis-id", value: "ARM-77" },
          { kind: "mac", value: "00:1A:2B:3C:4D:5E" },
        ],
      },
    ],
  },
);

export const DeviceListReply = Type.Object(
  {
    devices: Type.Array(ref(ListedDeviceSchema), { description: "In device-id order" }),
    next_cursor: Type.Optional(Type.String({ description: "Pass as `cursor` for the next page; absent on the last" })),
  },
  { $id: "DeviceList" },
);

export const QuarantinedReply = Type.Object(
  {
    identifiers: Type.Array(
      Type.Object({
        kind: Kind,
        value: Type.String(),
        quarantined_since_unix_millis: Type.Integer(),
        candidates: Type.Array(Type.String(), { description: "The devices that kept taking it from each other" }),
      }),
    ),
  },
  { $id: "QuarantinedIdentifiers" },
);

export const ReleasedReply = Type.Object({ released: Type.Boolean() }, { $id: "Released" });

export const HealthReply = Type.Object({ status: Type.Literal("ok") });
export const ReadyReply = Type.Object({
  status: stringEnum(["ready", "unavailable"]),
  kv: stringEnum(["ok", "unavailable"]),
  db: stringEnum(["ok", "unavailable"]),
  mode: stringEnum(["off", "shadow", "on"]),
});

/** Every named shape, registered with the app before the routes that reference them. */
export const NAMED_SCHEMAS = [
  DeviceUpdateSchema,
  IdentityKeySchema,
  BoundKeySchema,
  ErrorSchema,
  RecordSchema,
  RejectedSchema,
  TombstoneSchema,
  PublishBody,
  PublishResultSchema,
  PublishReply,
  ResolveBody,
  DecisionTraceSchema,
  ResolveResultSchema,
  ResolveReply,
  QuarantinedReply,
  ReleasedReply,
  LookupBody,
  LookupReply,
  BatchLookupBody,
  BatchLookupReply,
  DeviceReply,
  HistoryEntrySchema,
  HistoryReply,
  ListedDeviceSchema,
  DeviceListReply,
] as const;
