/** One Server-Sent Event as the stream sent it. */
export interface SseEvent {
  readonly event: string;
  /** The `id:` field, when the event had one. */
  readonly id?: string;
  readonly data: string;
}

/**
 * Parses a text/event-stream body (the WHATWG rules the service's /v1/changes needs: `event`, `id`,
 * `data` over several lines, comments, CR LF or LF line ends). `retry` is returned as an event too.
 */
export async function* parseSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "";
  let id: string | undefined;
  let data: string[] = [];
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    for (;;) {
      const nl = buffer.indexOf("\n");
      if (nl < 0) break;
      const line = buffer.slice(0, nl).replace(/\r$/, "");
      buffer = buffer.slice(nl + 1);
      if (line === "") {
        if (data.length > 0 || event !== "")
          yield { event: event || "message", ...(id !== undefined ? { id } : {}), data: data.join("\n") };
        event = "";
        id = undefined;
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
      else if (field === "retry") yield { event: "retry", data: value };
    }
  }
}
