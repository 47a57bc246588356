/** A bound on how deeply a parsed JSON body may nest (pure). */

/**
 * Deepest nesting of arrays and objects accepted in a body. Responses bodies are a few levels
 * deep (tool schemas a few dozen); a body nested thousands of levels deep would overflow the
 * stack of every recursive step after parsing (serialising it upstream among them).
 */
export const MAX_JSON_DEPTH = 512;

/** True when `value` nests arrays/objects deeper than `limit` (iterative: no recursion). */
export function exceedsJsonDepth(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number];
    if (typeof current !== 'object' || current === null) continue;
    if (depth > limit) return true;
    const children = Array.isArray(current) ? current : Object.values(current);
    for (const child of children) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}
