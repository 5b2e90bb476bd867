import { Type, type Static } from "typebox";

/** JSON shapes of the REST API, in snake_case. They also feed /openapi.json. */
export const DeviceUpdateSchema = Type.Object(
  {
    device_id: Type.Optional(
      Type.String({ description: "The source's id for the device; defaults to <partition>:<ip>" }),
    ),
    ip: Type.Optional(Type.String()),
    partition: Type.Optional(Type.String()),
    mac: Type.Optional(Type.String({ description: "One MAC or a list separated by , ; space tab or newline" })),
    hostname: Type.Optional(Type.String()),
    source: Type.Optional(Type.String({ description: "armis, netbox, sweep, agent, ..." })),
    metadata: Type.Optional(Type.Record(Type.String(), Type.String())),
    timestamp: Type.Optional(
      Type.Union([Type.String(), Type.Number()], { description: "Observation time: RFC 3339 or Unix milliseconds" }),
    ),
  },
  { $id: "DeviceUpdate" },
);
export type DeviceUpdateBody = Static<typeof DeviceUpdateSchema>;

export const IdentityKeySchema = Type.Object(
  {
    kind: Type.String({ description: "armis-id, netbox-id, mac, partition-ip, ip, device-id (or IDENTITY_KIND_*)" }),
    value: Type.String(),
  },
  { $id: "IdentityKey" },
);

export const ErrorSchema = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      field: Type.Optional(Type.String()),
      candidates: Type.Optional(
        Type.Array(Type.String(), { description: "ambiguous_identifier: the devices it names" }),
      ),
      /** Why a store is unavailable, where known: `no_quorum`. */
      reason: Type.Optional(Type.String()),
    }),
  },
  { $id: "Error" },
);

export const RecordSchema = Type.Object(
  {
    canonical_device_id: Type.String(),
    partition: Type.String(),
    metadata_hash: Type.String(),
    updated_at_unix_millis: Type.Number(),
    attributes: Type.Record(Type.String(), Type.String()),
    provisional: Type.Boolean({
      description: "the device only ever carried addresses (sweeps, pings): an asserting update there takes it over",
    }),
  },
  { $id: "CanonicalRecord" },
);

const Rejected = Type.Object({ field: Type.String(), value: Type.String(), reason: Type.String() });
const Tombstone = Type.Object({ device_id: Type.String(), merged_into: Type.String() });

export const PublishBody = Type.Object({ updates: Type.Array(DeviceUpdateSchema, { minItems: 1 }) });
export const ResolveBody = Type.Object({
  updates: Type.Array(DeviceUpdateSchema, { minItems: 1 }),
  explain: Type.Optional(Type.Boolean({ description: "add each decision's trace" })),
});

const DecisionTraceSchema = Type.Object(
  {
    candidates: Type.Array(
      Type.Object({
        device_id: Type.String(),
        key: Type.Object({ kind: Type.String(), value: Type.String() }),
        verdict: Type.String({ description: "chosen, vetoed, stale_link, named_elsewhere" }),
        provisional: Type.Boolean(),
        differing: Type.Optional(
          Type.Array(Type.Object({ kind: Type.String(), update: Type.String(), device: Type.String() })),
        ),
      }),
    ),
    provisional: Type.Optional(
      Type.Object({
        action: Type.String({ description: "take_over, absorbed, absorption_refused" }),
        device_id: Type.String(),
        reason: Type.Optional(Type.String({ description: "two_places or veto, when refused" })),
      }),
    ),
    own_id: Type.Optional(Type.String({ description: "redirect, already_redirects, merged, kept_apart" })),
    rule: Type.String({
      description:
        "strongest_bound_key, stable_id, address, address_derived_id, provisional_take_over, " +
        "joined_concurrent_create, new_device, derived_id",
    }),
  },
  { $id: "DecisionTrace" },
);
export const PublishReply = Type.Object({
  results: Type.Array(
    Type.Object({
      device_id: Type.String(),
      canonical_device_id: Type.Union([Type.String(), Type.Null()]),
      matched_by: Type.Union([Type.String(), Type.Null()]),
      outcome: Type.String({ description: "created, updated, unchanged, rejected, failed" }),
      tombstone: Type.Optional(Tombstone),
      merged_device_ids: Type.Optional(Type.Array(Type.String())),
      rejected_identifiers: Type.Optional(Type.Array(Rejected)),
      error: Type.Optional(
        Type.Object({ code: Type.String(), message: Type.String(), keys: Type.Optional(Type.Array(Type.String())) }),
      ),
    }),
  ),
});

export const ResolveReply = Type.Object({
  results: Type.Array(
    Type.Object({
      device_id: Type.String(),
      canonical_device_id: Type.Union([Type.String(), Type.Null()]),
      canonical_partition: Type.Union([Type.String(), Type.Null()]),
      canonical_metadata_hash: Type.Union([Type.String(), Type.Null()]),
      canonical_revision: Type.Union([Type.Number(), Type.Null()]),
      matched_by: Type.Union([Type.String(), Type.Null()]),
      rejected_identifiers: Type.Optional(Type.Array(Rejected)),
      trace: Type.Optional(DecisionTraceSchema),
    }),
  ),
});

export const LookupBody = Type.Object({
  identity_keys: Type.Array(IdentityKeySchema),
  ip_hint: Type.Optional(Type.String()),
  namespace: Type.Optional(Type.String()),
});

export const LookupReply = Type.Object(
  {
    found: Type.Boolean(),
    record: Type.Optional(RecordSchema),
    matched_key: Type.Optional(Type.Object({ kind: Type.String(), value: Type.String() })),
    ambiguous: Type.Optional(
      Type.Object(
        {
          key: Type.Object({ kind: Type.String(), value: Type.String() }),
          candidates: Type.Array(Type.String()),
        },
        { description: "found is false: the key is a quarantined (shared) identifier naming these devices" },
      ),
    ),
    revision: Type.Number({
      description: "KV revision of the matched binding; 0 when answered by the relational store",
    }),
    hydrated: Type.Boolean({ description: "True when a relational answer was written back to the KV" }),
  },
  { $id: "LookupResult" },
);

export const LookupQuery = Type.Object({
  mac: Type.Optional(Type.String()),
  ip: Type.Optional(Type.String()),
  partition: Type.Optional(Type.String()),
  armis_id: Type.Optional(Type.String()),
  netbox_id: Type.Optional(Type.String()),
  device_id: Type.Optional(Type.String()),
});

export const BatchLookupBody = Type.Object({
  lookups: Type.Array(
    Type.Object({ identity_keys: Type.Array(IdentityKeySchema), ip_hint: Type.Optional(Type.String()) }),
    { minItems: 1 },
  ),
  namespace: Type.Optional(Type.String()),
});
export const BatchLookupReply = Type.Object({ results: Type.Array(LookupReply) });

export const DeviceReply = Type.Object({
  device_id: Type.String(),
  redirected_to: Type.Optional(Type.String()),
  record: RecordSchema,
  revision: Type.Number(),
  keys: Type.Array(Type.Object({ kind: Type.String(), value: Type.String() })),
});

export const HistoryQuery = Type.Object({
  limit: Type.Optional(Type.String({ pattern: "^[0-9]+$", description: "Entries per page, 1 to 500 (default 50)" })),
  before: Type.Optional(Type.String({ pattern: "^[0-9]+$", description: "The `next` cursor of the previous page" })),
});

export const HistoryReply = Type.Object({
  device_id: Type.String(),
  entries: Type.Array(
    Type.Object({
      id: Type.Number(),
      at_unix_millis: Type.Number(),
      actor: Type.String({
        description: "Who: token:<sha256 prefix>, cert:<subject>, compaction, hydration, anonymous, ...",
      }),
      key: Type.Object({ kind: Type.String(), value: Type.String() }),
      from_device_id: Type.Union([Type.String(), Type.Null()]),
      to_device_id: Type.Union([Type.String(), Type.Null()]),
      revision: Type.Union([Type.Number(), Type.Null()]),
      reason: Type.String({ description: "create, rebind, delete, merge, redirect, expire, hydrate" }),
    }),
    { description: "Newest first" },
  ),
  next: Type.Optional(
    Type.Number({ description: "Pass as `before` for the next (older) page; absent on the last page" }),
  ),
});

export const QuarantinedReply = Type.Object({
  identifiers: Type.Array(
    Type.Object({
      kind: Type.String(),
      value: Type.String(),
      quarantined_since_unix_millis: Type.Number(),
      candidates: Type.Array(Type.String(), { description: "the devices that kept taking it from each other" }),
    }),
  ),
});

export const ReleasedReply = Type.Object({ released: Type.Boolean() });
