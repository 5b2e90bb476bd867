/** What a script can tell apart from the CLI's exit status (README, "Scripting the CLI"). */
export const EXIT = {
  ok: 0,
  /** Could not do it: bad input, the service or its stores unavailable, a usage error. */
  error: 1,
  /** Done, but some updates were rejected or failed (each result says why). */
  partial: 3,
  /** A lookup or device that does not exist. */
  miss: 4,
} as const;
