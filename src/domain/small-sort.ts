/**
 * Sorts in place, as `Array.prototype.sort` would (stable; strings by UTF-16 code units when no
 * comparator is given), by insertion for the short arrays of the publish path: the built-in sort
 * allocates a work copy of every array it sorts, the largest allocation left per update (issue 13).
 */
export function sortSmall<T>(a: T[], compare?: (x: T, y: T) => number): T[] {
  if (a.length > 16) return a.sort(compare);
  for (let i = 1; i < a.length; i++) {
    const v = a[i]!;
    let j = i - 1;
    if (compare) while (j >= 0 && compare(a[j]!, v) > 0) a[j + 1] = a[j--]!;
    else while (j >= 0 && String(a[j]) > String(v)) a[j + 1] = a[j--]!;
    a[j + 1] = v;
  }
  return a;
}
