/** A bound on how deeply a parsed JSON body may nest (pure). */

/**
 * Deepest nesting of arrays and objects accepted in a body. Responses bodies are a few levels
 * deep (tool schemas a few dozen); a body nested thousands of levels deep would overflow the
 * stack of every recursive step after parsing (serialising it upstream among them).
 */
export const MAX_JSON_DEPTH = 512;

/** True when `value` nests arrays/objects deeper than `limit` (iterative: no recursion). */
export function exceedsJsonDepth(value: unknown, limit: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  // Two parallel stacks: no allocation per visited object.
  const values: object[] = [value];
  const depths: number[] = [1];
  while (values.length > 0) {
    const current = values.pop() as object;
    const depth = depths.pop() as number;
    if (depth > limit) return true;
    if (Array.isArray(current)) {
      for (const child of current as unknown[]) {
        if (typeof child === 'object' && child !== null) {
          values.push(child);
          depths.push(depth + 1);
        }
      }
    } else {
      for (const key of Object.keys(current)) {
        const child = (current as Record<string, unknown>)[key];
        if (typeof child === 'object' && child !== null) {
          values.push(child);
          depths.push(depth + 1);
        }
      }
    }
  }
  return false;
}
