import { Type } from "typebox";
import { BoundKeySchema, RecordSchema, ref } from "./schemas.js";

/*
 * The change stream's shapes for /openapi.json (issue 15). The routes stream them (NDJSON lines and
 * Server-Sent Events' data), so the document describes each line or event; change-messages.ts
 * writes them.
 */

export const StreamRecordSchema = Type.Object(
  {
    ...RecordSchema.properties,
    expires_at_unix_millis: Type.Integer({ description: "0: never. A weak key past it reads as absent" }),
    quarantined_since_unix_millis: Type.Optional(
      Type.Integer({ description: "A MAC quarantined as shared: lookups by it are ambiguous" }),
    ),
    contested_until_unix_millis: Type.Optional(
      Type.Integer({
        description:
          "A MAC evidently different devices took from each other, not quarantined: " +
          "lookups by it are ambiguous until then",
      }),
    ),
    candidates: Type.Optional(
      Type.Array(Type.String(), { description: "A quarantined or contested MAC: the devices it names" }),
    ),
  },
  { $id: "StreamRecord", description: "A binding's record, with what a local lookup needs" },
);

export const SnapshotLineSchema = Type.Object(
  {
    revision: Type.Integer({ description: "The binding's own revision (at least the snapshot's)" }),
    key: ref(BoundKeySchema),
    canonical_device_id: Type.String(),
    record: ref(StreamRecordSchema),
  },
  { $id: "SnapshotLine", description: "One line of GET /v1/snapshot: a live binding" },
);

export const SnapshotEndSchema = Type.Object(
  {
    end: Type.Literal(true),
    revision: Type.Integer({ description: "The snapshot's revision: follow /v1/changes?since= it" }),
    count: Type.Integer({ description: "Bindings sent before this line" }),
  },
  { $id: "SnapshotEnd", description: "The last line of GET /v1/snapshot; a snapshot without it is incomplete" },
);

export const ChangeEventSchema = Type.Object(
  {
    revision: Type.Integer({ description: "The store's revision of the change; the SSE event id" }),
    operation: Type.Union([Type.Literal("put"), Type.Literal("delete")]),
    key: ref(BoundKeySchema),
    canonical_device_id: Type.Union([Type.String(), Type.Null()], { description: "null for a delete" }),
    record: Type.Optional(ref(StreamRecordSchema)),
  },
  { $id: "ChangeEvent", description: "The data of a `change` event of GET /v1/changes" },
);

export const HeartbeatSchema = Type.Object(
  {
    revision: Type.Integer({ description: "The newest revision the instance has seen" }),
    current: Type.Boolean({
      description: "The follower has every change through `revision` (then also the event's id); false: catching up",
    }),
  },
  { $id: "Heartbeat", description: "The data of a `heartbeat` event of GET /v1/changes" },
);

export const ChangesQuery = Type.Object({
  since: Type.Optional(
    Type.Integer({
      minimum: 0,
      description: "Resume after this revision; absent: from now. The Last-Event-ID header, when sent, wins",
    }),
  ),
});

export const CHANGE_SCHEMAS = [
  StreamRecordSchema,
  SnapshotLineSchema,
  SnapshotEndSchema,
  ChangeEventSchema,
  HeartbeatSchema,
];
