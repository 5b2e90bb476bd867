import { IdentityMapError } from "../domain/errors.js";

/** A request ran past IDMAP_REQUEST_TIMEOUT: the backend is slow or unavailable (503 / UNAVAILABLE). */
export class RequestTimeout extends IdentityMapError {
  readonly code = "request_timeout" as const;
}

/** Both front-ends bound each request by the same time limit. */
export async function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<T>((_, reject) => {
        t = setTimeout(() => reject(new RequestTimeout(`request did not finish within ${ms} ms; the backend is slow or unavailable`)), ms);
      }),
    ]);
  } finally {
    if (t) clearTimeout(t);
  }
}
