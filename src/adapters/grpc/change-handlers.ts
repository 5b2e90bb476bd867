import * as grpc from "@grpc/grpc-js";
import { InvalidArgument } from "../../domain/errors.js";
import type { CanonicalRecord } from "../../domain/record.js";
import type { ChangeEvent, ChangeSink, Following } from "../../ports/changes.js";
import type { CallAuthenticator, IdentityMapApi } from "../../ports/identity-service.js";
import { describeError } from "../error-status.js";
import { wireKey, wireRecord } from "./grpc-messages.js";

/** A follower whose stream holds more unsent messages than this is too slow: it is ended and resumes. */
const MAX_QUEUED = 50_000;

const OPERATION = { put: 1, delete: 2 } as const;

/** The full record as the stream sends it: what a local lookup needs (expiry, quarantine). */
function streamRecord(r: CanonicalRecord) {
  return {
    ...wireRecord(r),
    expires_at_unix_millis: r.expiresAtMs,
    quarantined_since_unix_millis: r.quarantinedSinceMs ?? 0,
    contenders: [...(r.contenders ?? [])],
  };
}

function wireChange(e: ChangeEvent) {
  return {
    change: {
      revision: e.revision,
      operation: OPERATION[e.operation],
      key: wireKey(e.key),
      ...(e.record ? { record: streamRecord(e.record) } : {}),
    },
  };
}

type Call = grpc.ServerWritableStream<unknown, unknown>;

/**
 * identitymap.v1.IdentityMapService/GetSnapshot and /WatchChanges (issue 15), reader role. Errors
 * go through the one status table; a RevisionCompacted is OUT_OF_RANGE with the revision to take a
 * new snapshot at in the `idmap-error-revision` trailer.
 */
export function changeHandlers(
  app: IdentityMapApi,
  auth: CallAuthenticator,
  isUndecodable: (request: unknown) => string | null,
) {
  const fail = (call: Call, e: unknown) => {
    const { status, body } = describeError(e);
    if (status.http >= 500) app.log.error({ err: String(e), method: call.getPath() }, "gRPC stream failed");
    const metadata = new grpc.Metadata();
    metadata.set("idmap-error-code", body.error.code);
    if (body.error.field) metadata.set("idmap-error-field", body.error.field);
    if (body.error.revision !== undefined) metadata.set("idmap-error-revision", String(body.error.revision));
    call.emit("error", { code: status.grpc, details: body.error.message, metadata });
  };
  const authorize = (call: Call) => {
    const header = call.metadata.get("authorization")[0];
    auth.authorize(
      {
        authorization: typeof header === "string" ? header : undefined,
        peerSubject: call.getAuthContext()?.sslPeerCertificate?.subject,
        transport: "grpc",
        peer: call.getPeer(),
      },
      "reader",
    );
    const bad = isUndecodable(call.request);
    if (bad !== null) throw new InvalidArgument("request", `not a valid protobuf message (${bad})`);
  };

  /** Open watches, and how to end each. */
  const open = new Map<Call, () => void>();
  const handlers = {
    GetSnapshot: (call: Call) => {
      const run = async () => {
        authorize(call);
        const snap = await app.changes.snapshot();
        let count = 0;
        for await (const page of snap.pages) {
          if (call.cancelled) return;
          count += page.length;
          const ok = call.write({
            revision: snap.revision,
            bindings: page.map((e) => ({ key: wireKey(e.key), record: streamRecord(e.record), revision: e.revision })),
            last: false,
            count: 0,
          });
          if (!ok) await new Promise<void>((r) => call.once("drain", r));
        }
        call.write({ revision: snap.revision, bindings: [], last: true, count });
        call.end();
      };
      run().catch((e: unknown) => fail(call, e));
    },

    WatchChanges: (call: Call) => {
      let following: Following | undefined;
      let ended = false;
      const finish = () => {
        ended = true;
        open.delete(call);
        following?.close();
      };
      open.set(call, finish);
      call.on("cancelled", finish);
      call.on("close", finish);
      const sink: ChangeSink = {
        changes(batch) {
          if (ended) return;
          for (const e of batch) call.write(wireChange(e));
          if (call.writableLength > MAX_QUEUED) {
            finish();
            call.end();
          }
        },
        heartbeat(head, current) {
          if (!ended) call.write({ heartbeat: { revision: head, current } });
        },
        end(error) {
          if (ended) return;
          finish();
          fail(call, error);
        },
      };
      const run = async () => {
        authorize(call);
        const req = call.request as { since: number; from_now: boolean };
        const since = req.from_now ? await app.changes.head() : req.since;
        following = await app.changes.follow(since, sink, "grpc");
        if (ended) following.close();
      };
      run().catch((e: unknown) => {
        finish();
        fail(call, e);
      });
    },
  };
  return {
    handlers,
    /** Ends every open watch, so a server shutdown does not wait for followers. */
    endAll() {
      for (const [call, finish] of open) {
        finish();
        call.end();
      }
    },
  };
}
