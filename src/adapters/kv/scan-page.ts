/**
 * Refuses a scan page size that is not a positive integer, before anything is read: each store
 * would misread one differently (etcd takes a limit of 0 as no limit and returns the namespace in
 * one page; the memory store's loop would never advance; Redis refuses COUNT 0 only mid-scan).
 */
export function checkPageSize(pageSize: number): void {
  if (!Number.isSafeInteger(pageSize) || pageSize < 1)
    throw new RangeError(`scan: the page size must be a positive integer, got ${pageSize}`);
}
