import { RequestTimeout } from "../domain/errors.js";

export { RequestTimeout };

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
