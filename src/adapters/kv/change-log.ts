import type { Revision } from "../../domain/binding.js";
import type { ResumePoint } from "../../ports/identity-kv.js";

/**
 * The resume rule of a store that keeps a change log of consecutive revisions (memory, SQLite,
 * PostgreSQL, the Redis stream): a watch after `after` misses nothing while the log still holds
 * revision `after + 1` (or nothing was written since), and the store has reached `after`.
 * `oldest` is the log's first revision, or null when the log is empty.
 */
export function resumePointFromLog(after: Revision, head: Revision, oldest: Revision | null): ResumePoint {
  if (after > head)
    return {
      head,
      resumable: false,
      reason: `revision ${after} is ahead of the store's ${head}: the store lost changes`,
    };
  if (after < head && oldest !== null && after < oldest - 1)
    return { head, resumable: false, reason: `revision ${after} is compacted (oldest kept ${oldest})` };
  if (after < head && oldest === null)
    return { head, resumable: false, reason: `revision ${after} is compacted (no change kept)` };
  return { head, resumable: true };
}
