import { createServer, Socket, type Server } from "node:net";

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Replies are held back (never delivered) once the trap fired on this connection. */
  frozen: boolean;
}

/**
 * A TCP proxy on loopback between a client library and a private server, for losing replies on
 * purpose. `loseReplyAfter(marker)` arms a trap: the first client-to-server chunk that contains the
 * marker is forwarded (the server gets the request and applies it), and from then on nothing the
 * server sends on that connection reaches the client. `cut()` then drops the frozen connections, so
 * the client sees its request fail with the reply lost. New connections pass through normally.
 */
export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  private trap: { marker: Buffer; fired: (pair: Pair) => void } | undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => proxy!.accept(client, targetPort));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const addr = server.address();
    proxy = new TcpProxy(server, typeof addr === "object" && addr ? addr.port : 0);
    return proxy;
  }

  /** Resolves once a request carrying `marker` went through; its reply (and all later data on that connection) is held back. */
  loseReplyAfter(marker: string): Promise<void> {
    return new Promise((resolve) => {
      this.trap = {
        marker: Buffer.from(marker, "utf8"),
        fired: (pair) => {
          pair.frozen = true;
          this.trap = undefined;
          resolve();
        },
      };
    });
  }

  /** Drops every frozen connection (RST to both sides); the held replies are never delivered. */
  cut(): number {
    let n = 0;
    for (const p of this.pairs) {
      if (!p.frozen) continue;
      n++;
      p.client.resetAndDestroy();
      p.upstream.resetAndDestroy();
      this.pairs.delete(p);
    }
    return n;
  }

  async close(): Promise<void> {
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    this.pairs.clear();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private accept(client: Socket, targetPort: number): void {
    const upstream = new Socket();
    const pair: Pair = { client, upstream, frozen: false };
    this.pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on("error", drop);
    upstream.on("error", drop);
    client.on("close", drop);
    upstream.on("close", drop);
    client.pause();
    upstream.connect(targetPort, "127.0.0.1", () => client.resume());
    let tail = Buffer.alloc(0);
    client.on("data", (chunk: Buffer) => {
      upstream.write(chunk);
      // The request is on its way to the server before the trap closes the way back. The tail of
      // the previous chunk catches a marker split across two chunks.
      const seen = Buffer.concat([tail, chunk]);
      tail = seen.subarray(Math.max(0, seen.length - 256));
      if (this.trap && !pair.frozen && seen.includes(this.trap.marker)) this.trap.fired(pair);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (!pair.frozen) client.write(chunk);
    });
  }
}
