import type { ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { InvalidArgument } from "../../domain/errors.js";
import { sharedIdentifierPolicy, type SharedIdentifierPolicy } from "../../domain/shared-identifier.js";
import type { ChangeEvent, ChangeSink, Following } from "../../ports/changes.js";
import type { IdentityMapApi, Principal } from "../../ports/identity-service.js";
import { changeJson, snapshotEndJson, snapshotLineJson } from "./change-messages.js";
import { Type } from "typebox";
import {
  CHANGE_SCHEMAS,
  ChangeEventSchema,
  ChangesQuery,
  HeartbeatSchema,
  SnapshotEndSchema,
  SnapshotLineSchema,
} from "./change-schemas.js";
import { described, documented, ref } from "./openapi.js";
import { ErrorSchema } from "./schemas.js";

/** A follower whose socket holds more unsent bytes than this is too slow: it is cut off and resumes later. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

/** The header that carries a snapshot's revision. */
export const REVISION_HEADER = "x-identitymap-revision";

/**
 * GET /v1/snapshot (NDJSON) and GET /v1/changes (Server-Sent Events), reader role. Registered by
 * buildRestApp; the streams are ended when the server closes, so a close never waits on a follower.
 */
export function registerChangeRoutes(
  f: FastifyInstance,
  app: IdentityMapApi,
  authorize: (req: FastifyRequest, need: "reader" | "writer") => Principal,
): void {
  for (const schema of CHANGE_SCHEMAS) f.addSchema(schema);
  const shared = sharedIdentifierPolicy(app.config);
  const open = new Set<() => void>();
  f.addHook("preClose", async () => {
    for (const end of open) end();
  });
  const { errors, op } = documented;

  f.get(
    "/v1/snapshot",
    {
      schema: {
        ...op("getSnapshot", "reader"),
        summary: "Every live binding, streamed as NDJSON; the revision in a header and the last line",
        description:
          "Needs the `reader` role when tokens are configured. One SnapshotLine per binding, then one " +
          "SnapshotEnd line. Follow GET /v1/changes?since=<revision> from there.",
        response: {
          200: {
            description: `NDJSON: SnapshotLine per binding, then SnapshotEnd; the revision also in ${REVISION_HEADER}`,
            headers: { [REVISION_HEADER]: { type: "integer", description: "The snapshot's revision" } },
            content: {
              "application/x-ndjson": { schema: Type.Union([ref(SnapshotLineSchema), ref(SnapshotEndSchema)]) },
            },
          },
          ...errors,
        },
      },
    },
    async (req, reply) => {
      authorize(req, "reader");
      const snap = await app.changes.snapshot();
      async function* lines(): AsyncGenerator<string> {
        let count = 0;
        for await (const page of snap.pages) {
          count += page.length;
          yield page.map((e) => `${JSON.stringify(snapshotLineJson(e, shared))}\n`).join("");
        }
        yield `${JSON.stringify(snapshotEndJson(snap.revision, count))}\n`;
      }
      const body = Readable.from(lines());
      const end = () => body.destroy();
      open.add(end);
      body.once("close", () => open.delete(end));
      return reply
        .header("content-type", "application/x-ndjson")
        .header(REVISION_HEADER, String(snap.revision))
        .header("cache-control", "no-store")
        .send(body);
    },
  );

  f.get(
    "/v1/changes",
    {
      schema: {
        ...op("watchChanges", "reader"),
        summary: "Every binding change after a revision, then live, as Server-Sent Events",
        description:
          "Needs the `reader` role when tokens are configured. `change` events carry a ChangeEvent and " +
          "the revision as their id (on the last event of a revision); `heartbeat` events carry the newest " +
          "revision. Resume with Last-Event-ID or since; a revision the store no longer remembers is a 410.",
        querystring: ChangesQuery,
        headers: {
          type: "object",
          properties: { "last-event-id": { type: "string", description: "Resume after this revision (wins)" } },
        },
        response: {
          200: {
            description: "text/event-stream of `change` (ChangeEvent) and `heartbeat` (Heartbeat) events",
            content: { "text/event-stream": { schema: Type.Union([ref(ChangeEventSchema), ref(HeartbeatSchema)]) } },
          },
          410: described(
            "revision_compacted: the store no longer remembers that revision; `revision` names the " +
              "newest: take a new snapshot",
            ErrorSchema,
          ),
          ...errors,
        },
      },
    },
    async (req, reply) => {
      authorize(req, "reader");
      const since = resumeAfter(req.headers["last-event-id"], (req.query as { since?: number }).since);
      const sse = new SseSink(app.changes.heartbeatMs, shared);
      const field = req.headers["last-event-id"] !== undefined ? "last-event-id" : "since";
      const following: Following = await app.changes.follow(since ?? (await app.changes.head()), sse, "rest", field);
      reply.hijack();
      const end = () => sse.close();
      open.add(end);
      sse.attach(reply.raw, () => {
        following.close();
        open.delete(end);
      });
    },
  );
}

/**
 * The SSE text of a batch, encoded once however many followers it goes to: the hub hands every
 * follower that is current the same batch object.
 */
const encoded = new WeakMap<readonly ChangeEvent[], string>();
function encodeBatch(batch: readonly ChangeEvent[], shared: SharedIdentifierPolicy): string {
  let out = encoded.get(batch);
  if (out !== undefined) return out;
  out = "";
  for (let i = 0; i < batch.length; i++) {
    const e = batch[i]!;
    const lastOfRevision = batch[i + 1]?.revision !== e.revision;
    const id = lastOfRevision ? `id: ${e.revision}\n` : "";
    out += `event: change\n${id}data: ${JSON.stringify(changeJson(e, shared))}\n\n`;
  }
  encoded.set(batch, out);
  return out;
}

/** Last-Event-ID wins over `since` (a reconnecting EventSource repeats its first URL). */
function resumeAfter(lastEventId: string | string[] | undefined, since: number | undefined): number | undefined {
  if (lastEventId === undefined) return since;
  const v = Array.isArray(lastEventId) ? lastEventId[0] : lastEventId;
  if (v === undefined || !/^\d{1,15}$/.test(v.trim()))
    throw new InvalidArgument("last-event-id", `${JSON.stringify(v)} is not a revision (a non-negative integer)`);
  return Number(v.trim());
}

/**
 * Writes a follow as Server-Sent Events. What arrives before the response is attached (the
 * backlog a follow delivers at once) is kept and written first. Within a batch, only the last
 * event of each revision carries `id:`, so a follower cut off inside a revision resumes before it
 * and sees it whole (the rest of a revision is never lost; part of it may come twice).
 */
class SseSink implements ChangeSink {
  private res: ServerResponse | undefined;
  private early: string[] = [];
  private onClose: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly heartbeatMs: number,
    private readonly shared: SharedIdentifierPolicy,
  ) {}

  attach(res: ServerResponse, onClose: () => void): void {
    this.onClose = onClose;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    res.on("close", () => this.close());
    // Small events must leave at once, not wait for more to fill a packet (Nagle).
    res.socket?.setNoDelay(true);
    this.res = res;
    res.write(`retry: ${Math.min(5_000, this.heartbeatMs)}\n\n${this.early.join("")}`);
    this.early = [];
    if (this.closed) {
      res.end();
      onClose();
    }
  }

  changes(batch: readonly ChangeEvent[]): void {
    this.write(encodeBatch(batch, this.shared));
  }

  /** A current follower's heartbeat carries the head as its id: resuming after it misses nothing. */
  heartbeat(head: number, current: boolean): void {
    this.write(
      `event: heartbeat\n${current ? `id: ${head}\n` : ""}data: {"revision":${head},"current":${current}}\n\n`,
    );
  }

  /** An `error` event (RevisionCompacted names the revision to re-snapshot at), then the stream ends. */
  end(error: Error): void {
    const code = (error as { code?: unknown }).code;
    const revision = (error as { revision?: unknown }).revision;
    this.write(
      `event: error\ndata: ${JSON.stringify({
        error: {
          code: typeof code === "string" ? code : "unavailable",
          message: error.message,
          ...(typeof revision === "number" ? { revision } : {}),
        },
      })}\n\n`,
    );
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.res?.end();
    this.onClose?.();
  }

  private write(text: string): void {
    if (this.closed) return;
    if (!this.res) {
      this.early.push(text);
      return;
    }
    this.res.write(text);
    // Node corks the socket on a write until the next tick, which on a busy loop comes after the
    // requests queued behind this task: an event leaves now instead.
    this.res.socket?.uncork();
    if (this.res.writableLength > MAX_BUFFERED_BYTES) this.close();
  }
}
