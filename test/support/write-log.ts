import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { Etcd3 } from "etcd3";
import { Redis } from "ioredis";

/**
 * How many times each key was written, as the server itself records it, read beside the adapter:
 * Redis's change stream (one entry per applied script), etcd's per-key `version` (puts since the
 * key was created), a JetStream bucket's history (every message kept; the bucket needs history > 1).
 * One write per acknowledged operation is what "no double apply" means.
 */
export interface WriteLog {
  writes(key: string): Promise<number>;
  close(): Promise<void>;
}

export async function redisWriteLog(url: string, keyPrefix: string): Promise<WriteLog> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  return {
    async writes(key) {
      const entries = await redis.xrange(`${keyPrefix}changes`, "-", "+");
      return entries.filter(([, fields]) => fields[0] === "k" && fields[1] === key).length;
    },
    async close() {
      redis.disconnect();
    },
  };
}

export async function etcdWriteLog(endpoint: string, keyPrefix: string): Promise<WriteLog> {
  const client = new Etcd3({ hosts: [endpoint] });
  return {
    async writes(key) {
      const r = await client.get(`${keyPrefix}${key}`).exec();
      return Number(r.kvs[0]?.version ?? 0);
    },
    async close() {
      client.close();
    },
  };
}

export async function jetstreamWriteLog(url: string, bucket: string): Promise<WriteLog> {
  const nc = await connect({ servers: url });
  const kv = await new Kvm(jetstream(nc)).open(bucket);
  return {
    async writes(key) {
      let n = 0;
      for await (const e of await kv.history({ key })) if (e.operation === "PUT") n++;
      return n;
    },
    async close() {
      await nc.close();
    },
  };
}
