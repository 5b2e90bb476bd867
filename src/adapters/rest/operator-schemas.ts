import { Type } from "typebox";
import {
  BoundKeySchema,
  HistoryEntrySchema,
  IdentityKeySchema,
  LookupReply,
  RecordSchema,
  ref,
  ResolveResultSchema,
} from "./schemas.js";

/*
 * The operator's routes (ADR 0016): manual merges, splits, pins, the console's device page, and the
 * as-of answer of the GET lookup. Registered with the app by operator-routes.ts.
 */

export const MergeBody = Type.Object(
  { into: Type.String({ minLength: 1, description: "The device that receives the keys", examples: ["laptop-7"] }) },
  { $id: "MergeRequest", additionalProperties: false },
);

export const SplitBody = Type.Object(
  {
    keys: Type.Array(ref(IdentityKeySchema), {
      minItems: 1,
      maxItems: 1000,
      description:
        "Keys bound to the device, in any notation; they become a new device (a device id among them names it)",
    }),
  },
  { $id: "SplitRequest", additionalProperties: false },
);

export const OperatorReply = Type.Object(
  {
    device_id: Type.String({ description: "The device that holds the moved keys now" }),
    moved_keys: Type.Array(ref(BoundKeySchema)),
  },
  { $id: "OperatorResult" },
);

export const PinParams = Type.Object({
  device_id: Type.String({ examples: ["laptop-7"] }),
  kind: Type.String({ description: "armis-id, netbox-id, mac, partition-ip, ip or device-id", examples: ["mac"] }),
  value: Type.String({ description: "The identifier, in any notation", examples: ["00-1A-2B-3C-4D-5E"] }),
});

export const PinReply = Type.Object({ pinned: Type.Boolean() }, { $id: "PinResult" });

export const PinConflictsQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, description: "Entries (default 100)" })),
});

export const PinConflictsReply = Type.Object(
  {
    conflicts: Type.Array(ref(HistoryEntrySchema), {
      description:
        "Newest first: from_device_id holds the pinned key, to_device_id is where the sighting would have moved it",
    }),
  },
  { $id: "PinConflicts" },
);

const PinSchema = Type.Object({ at_unix_millis: Type.Integer(), actor: Type.String() });

export const DeviceDetailReply = Type.Object(
  {
    device_id: Type.String(),
    redirected_to: Type.Optional(Type.String({ description: "Set when the id was merged into another device" })),
    record: ref(RecordSchema),
    revision: Type.Integer(),
    keys: Type.Array(
      Type.Object({
        kind: BoundKeySchema.properties.kind,
        value: Type.String(),
        pinned: Type.Optional(PinSchema),
      }),
    ),
    redirects_in: Type.Array(Type.String(), { description: "Retired ids that redirect to this device" }),
    provisional: Type.Boolean(),
    latest_sighting: Type.Optional(
      Type.Object({
        ip: Type.String(),
        partition: Type.String(),
        hostname: Type.String(),
        source: Type.String(),
        last_seen_unix_millis: Type.Integer(),
      }),
    ),
    explanation: Type.Optional(ref(ResolveResultSchema)),
  },
  { $id: "DeviceDetail" },
);

export const AsOfReply = Type.Object(
  {
    found: Type.Boolean(),
    at: Type.String({ format: "date-time", description: "The time asked about" }),
    device_id: Type.String({ description: "The device that held the identifier then" }),
    matched_key: ref(BoundKeySchema),
    since_unix_millis: Type.Integer({ description: "When that device got the identifier" }),
    until_unix_millis: Type.Optional(
      Type.Integer({ description: "When it lost it; absent while it still holds it, as far as the trail says" }),
    ),
    reason: Type.String({ description: "The audit reason of the change that bound it" }),
    actor: Type.String({ description: "Who made that change" }),
  },
  { $id: "AsOfResult" },
);

export const SessionReply = Type.Object(
  {
    actor: Type.String({ description: "token:<sha256 prefix>, cert:<subject>, or anonymous when auth is off" }),
    role: Type.Union([Type.Literal("reader"), Type.Literal("writer")]),
    auth: Type.Boolean({ description: "False when the service runs without auth (every caller is a writer)" }),
  },
  { $id: "Session" },
);

/** The GET lookup's answer: the device that holds the identifier now, or with `at`, the one that held it then. */
export const LookupOrAsOfReply = Type.Union([ref(LookupReply), ref(AsOfReply)], { $id: "LookupOrAsOfResult" });

/** Registered with the app, after NAMED_SCHEMAS and before any route that references them. */
export const OPERATOR_SCHEMAS = [
  MergeBody,
  SplitBody,
  OperatorReply,
  PinReply,
  PinConflictsReply,
  DeviceDetailReply,
  AsOfReply,
  LookupOrAsOfReply,
  SessionReply,
] as const;
