import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { openPostgres } from "../../src/adapters/db/postgres.js";
import { SqlDeviceStore } from "../../src/adapters/db/sql-device-store.js";
import { openSqlite, openSqliteHandles } from "../../src/adapters/db/sqlite.js";
import { forBackend, testServers, uniqueName } from "../support/backends.js";
import { type DeviceStoreFixture, deviceStoreContract } from "./device-store.contract.js";

/**
 * The DeviceStore port (and the IdentityKv contract on its binding table) on every relational backend:
 * one table says what differs between them, how to open a store on this run's database and how to
 * remove that database (`dispose`); the loop at the end registers the contract per backend.
 * test/db keeps what is not a port contract: a PostgreSQL restart and one migration.
 */
interface DeviceStoreBackend extends DeviceStoreFixture {
  readonly backend: "sqlite" | "postgres";
  /** The suite's name, when one backend runs it more than once. */
  readonly label?: string;
}

/** SQLite: a file in a directory of this run's own, made on first use. */
let sqliteDir: string | undefined;
const sqliteDirectory = () => (sqliteDir ??= mkdtempSync(join(tmpdir(), "idmap-devices-")));
let sqliteRawDir: string | undefined;
const sqliteRawDirectory = () => (sqliteRawDir ??= mkdtempSync(join(tmpdir(), "idmap-devices-raw-")));

// PostgreSQL: one database per run on the shared server, created on first use and dropped at the end.
const database = uniqueName("idmap_test");
const admin = () => new pg.Client({ connectionString: testServers.postgresAdminUrl, connectionTimeoutMillis: 5_000 });
let created: Promise<string> | undefined;
const postgresUrl = () =>
  (created ??= (async () => {
    const c = admin();
    await c.connect();
    try {
      await c.query(`create database ${database}`);
    } finally {
      await c.end();
    }
    const u = new URL(testServers.postgresAdminUrl);
    u.pathname = `/${database}`;
    return u.toString();
  })());

const DEVICE_STORES: readonly DeviceStoreBackend[] = [
  {
    backend: "sqlite",
    open: async () => new SqlDeviceStore(openSqlite(join(sqliteDirectory(), "devices.sqlite")), "sqlite"),
    dispose: async () => {
      if (sqliteDir) rmSync(sqliteDir, { recursive: true, force: true });
    },
  },
  {
    // As the service opens it: rows and audit written through prepared statements on the raw handle.
    backend: "sqlite",
    label: "sqlite (prepared statements)",
    open: async () => {
      const { db, raw } = openSqliteHandles(join(sqliteRawDirectory(), "devices.sqlite"));
      return new SqlDeviceStore(db, "sqlite", raw);
    },
    dispose: async () => {
      if (sqliteRawDir) rmSync(sqliteRawDir, { recursive: true, force: true });
    },
  },
  {
    backend: "postgres",
    // openPostgres: the service's pool, which hears an idle connection the server drops instead of dying of it.
    open: async () => new SqlDeviceStore(openPostgres(await postgresUrl()), "postgres"),
    dispose: async () => {
      if (!created) return;
      const c = admin();
      await c.connect();
      try {
        await c.query(`drop database if exists ${database} with (force)`);
      } finally {
        await c.end();
      }
    },
  },
];

for (const s of DEVICE_STORES) forBackend(s.backend, () => deviceStoreContract(s.label ?? s.backend, s));
