import type { AuditIntent, DeviceStore } from "../../ports/device-store.js";

/**
 * Journals publish attempts' intents before their KV writes (ADR 0017). The updates of a batch decide
 * concurrently; intents that arrive while a write is being prepared go out together in one insert, so a
 * batch of changed updates costs a few journal writes, not one each.
 */
export class IntentJournal {
  private queue: AuditIntent[] = [];
  private flush: Promise<void> | undefined;

  constructor(private readonly devices: DeviceStore) {}

  /** Resolves once the intent is in the database; rejects (DbUnavailable) when it could not be written. */
  put(intent: AuditIntent): Promise<void> {
    this.queue.push(intent);
    this.flush ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      const batch = this.queue;
      this.queue = [];
      this.flush = undefined;
      return this.devices.journalIntents(batch);
    });
    return this.flush;
  }
}
