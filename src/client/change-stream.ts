import { parseSse } from "./sse.js";
import type { ChangeEvent, Heartbeat, SnapshotEnd, SnapshotLine } from "./stream-types.js";

export interface StreamConnection {
  /** `http://host:8080` of one instance. */
  readonly baseUrl: string;
  /** Bearer token with the reader role (IDMAP_AUTH_TOKENS). */
  readonly token?: string;
  readonly fetch?: typeof fetch;
  readonly signal?: AbortSignal;
}

/** 410 from /v1/changes: the store no longer remembers the revision; take a snapshot at `revision` or later. */
export class RevisionGone extends Error {
  override readonly name = "RevisionGone";
  constructor(
    readonly revision: number,
    message: string,
  ) {
    super(message);
  }
}

/** Any other refusal or failure of a stream request: `status` 0 when no answer came. */
export class StreamError extends Error {
  override readonly name = "StreamError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export type StreamItem =
  | { readonly type: "change"; readonly change: ChangeEvent }
  | { readonly type: "heartbeat"; readonly heartbeat: Heartbeat };

async function request(c: StreamConnection, path: string, accept: string): Promise<Response> {
  const f = c.fetch ?? globalThis.fetch;
  let res: Response;
  try {
    res = await f(`${c.baseUrl.replace(/\/+$/, "")}${path}`, {
      headers: { accept, ...(c.token ? { authorization: `Bearer ${c.token}` } : {}) },
      ...(c.signal ? { signal: c.signal } : {}),
    });
  } catch (e) {
    throw new StreamError(0, "unreachable", `${c.baseUrl}: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
    });
  }
  if (res.ok && res.body) return res;
  const body = (await res.json().catch(() => ({}))) as {
    error?: { code?: string; message?: string; revision?: number };
  };
  const message = body.error?.message ?? `HTTP ${res.status}`;
  if (res.status === 410) throw new RevisionGone(body.error?.revision ?? 0, message);
  throw new StreamError(res.status, body.error?.code ?? "http_error", `${c.baseUrl}${path}: ${message}`);
}

/**
 * GET /v1/snapshot, line by line: `onLines` gets each chunk's bindings as they arrive. Resolves with
 * the snapshot's revision and count once its last line came; a snapshot cut short throws.
 */
export async function readSnapshot(
  c: StreamConnection,
  onLines: (lines: readonly SnapshotLine[]) => void,
): Promise<{ revision: number; count: number }> {
  const res = await request(c, "/v1/snapshot", "application/x-ndjson");
  const decoder = new TextDecoder();
  let rest = "";
  let end: SnapshotEnd | undefined;
  let count = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    const text = rest + decoder.decode(chunk, { stream: true });
    const lines = text.split("\n");
    rest = lines.pop() ?? "";
    const batch: SnapshotLine[] = [];
    for (const line of lines) {
      if (line === "") continue;
      const parsed = JSON.parse(line) as SnapshotLine | SnapshotEnd;
      if ("end" in parsed) end = parsed;
      else batch.push(parsed);
    }
    count += batch.length;
    if (batch.length > 0) onLines(batch);
  }
  if (!end || end.count !== count)
    throw new StreamError(0, "incomplete", `${c.baseUrl}/v1/snapshot ended before its last line`);
  return { revision: end.revision, count };
}

/**
 * GET /v1/changes after `since` (absent: from now): changes and heartbeats until the stream ends
 * (returns) or fails (throws RevisionGone for a 410 or a `revision_compacted` error event).
 */
export async function* followChanges(c: StreamConnection, since?: number): AsyncGenerator<StreamItem> {
  const res = await request(c, `/v1/changes${since !== undefined ? `?since=${since}` : ""}`, "text/event-stream");
  for await (const ev of parseSse(res.body as unknown as AsyncIterable<Uint8Array>)) {
    if (ev.event === "change") yield { type: "change", change: JSON.parse(ev.data) as ChangeEvent };
    else if (ev.event === "heartbeat") yield { type: "heartbeat", heartbeat: JSON.parse(ev.data) as Heartbeat };
    else if (ev.event === "error") {
      const e = (JSON.parse(ev.data) as { error: { code: string; message: string; revision?: number } }).error;
      if (e.code === "revision_compacted") throw new RevisionGone(e.revision ?? 0, e.message);
      throw new StreamError(200, e.code, e.message);
    }
  }
}
