import type { BindingChange } from "../../domain/binding.js";
import type { AuditIntent, DeviceStore } from "../../ports/device-store.js";

/** The publish batch an intent belongs to: its time, its actor, and the journal rows it must settle. */
export interface JournalBatch {
  readonly now: number;
  readonly actor: string;
  /** Filled by the journal: the rows holding this batch's intents, once they are in the database. */
  readonly journaled: string[];
}

/**
 * Journals publish attempts' intents before their KV writes (ADR 0017). The updates of a batch decide
 * concurrently; the intents of one batch that arrive in the same tick become one journal row (their
 * changes in the order they came, under the first attempt's operation id), so a batch of changed
 * updates costs a few rows, not one per update, and settling them a few deletes (issue 13). A row only
 * ever holds one batch's intents: the batch settles all of its rows together, with its audit rows.
 */
export class IntentJournal {
  private queue = new Map<JournalBatch, { operationId: string; changes: BindingChange[] }>();
  private flush: Promise<void> | undefined;

  constructor(private readonly devices: DeviceStore) {}

  /**
   * Resolves once the intent is in the database (and its row in `batch.journaled`); rejects
   * (DbUnavailable) when it could not be written.
   */
  put(batch: JournalBatch, operationId: string, changes: readonly BindingChange[]): Promise<void> {
    const row = this.queue.get(batch);
    if (row) for (const c of changes) row.changes.push(c);
    else this.queue.set(batch, { operationId, changes: [...changes] });
    this.flush ??= new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      const rows = this.queue;
      this.queue = new Map();
      this.flush = undefined;
      const intents: AuditIntent[] = [];
      for (const [b, r] of rows)
        intents.push({ operationId: r.operationId, atMs: b.now, actor: b.actor, changes: r.changes });
      await this.devices.journalIntents(intents);
      for (const [b, r] of rows) b.journaled.push(r.operationId);
    });
    return this.flush;
  }
}
