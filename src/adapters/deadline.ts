import { IdentityMapError } from "../domain/errors.js";

/** A request ran past IDMAP_REQUEST_TIMEOUT: the backend is slow or unavailable (503 / UNAVAILABLE). */
export class RequestTimeout extends IdentityMapError {
  readonly code = "request_timeout" as const;
}

/**
 * Both front-ends bound each request by the same time limit. One promise and one timer per request
 * (no async wrapper, no Promise.race): this sits on every lookup's hot path.
 */
export function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(
      () => reject(new RequestTimeout(`request did not finish within ${ms} ms; the backend is slow or unavailable`)),
      ms,
    );
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
