import type { BindingChange, Revision } from "../../domain/binding.js";
import type { Logger } from "../../ports/logger.js";

/** The structured log line of one audited binding change (`"audit": true`, docs/security.md). */
export function logBindingChange(
  log: Logger,
  actor: string,
  c: BindingChange,
  revision: Revision | null,
  extra: Readonly<Record<string, unknown>> = {},
): void {
  log.info(
    {
      audit: true,
      ...extra,
      actor,
      kind: c.key.kind,
      key: c.key.value,
      from: c.fromDeviceId,
      to: c.toDeviceId,
      revision,
      reason: c.reason,
    },
    "binding change",
  );
}
