/**
 * Followers of the change stream in a process of their own (so their reading does not share the
 * publisher's core): `start` opens `count` GET /v1/changes streams from now; `stop` reports how many
 * changes each received. They count events in the raw stream (node:http, no decoding): the run
 * measures what followers cost the service, not what a client spends parsing.
 */
import { get } from "node:http";

const send = (m: object) => process.send?.(m);
const received: number[] = [];
const requests: ReturnType<typeof get>[] = [];
const MARK = "event: change\n";

function follow(url: string, i: number, onOpen: () => void): void {
  const req = get(`${url}/v1/changes`, { headers: { accept: "text/event-stream" } }, (res) => {
    if (res.statusCode !== 200) {
      send({ type: "error", error: `HTTP ${res.statusCode}` });
      return;
    }
    onOpen();
    res.setEncoding("utf8");
    let tail = "";
    res.on("data", (chunk: string) => {
      const text = tail + chunk;
      let last = 0;
      for (let at = text.indexOf(MARK); at >= 0; at = text.indexOf(MARK, last)) {
        received[i]!++;
        last = at + MARK.length;
      }
      tail = text.slice(Math.max(last, text.length - MARK.length));
    });
  });
  req.on("error", () => {});
  requests.push(req);
}

process.on("message", (m: { type: string; url?: string; count?: number }) => {
  if (m.type === "start") {
    const count = m.count ?? 20;
    let open = 0;
    for (let i = 0; i < count; i++) {
      received.push(0);
      follow(m.url!, i, () => {
        if (++open === count) send({ type: "connected" });
      });
    }
  } else if (m.type === "stop") {
    for (const r of requests) r.destroy();
    send({ type: "stopped", received });
    setTimeout(() => process.exit(0), 50);
  }
});
send({ type: "ready" });
