// A bound on nesting. Real NIMServices nest a few dozen levels; a body nested thousands deep is an
// attack or a bug, and recursive walkers (JSON.stringify, structuredClone, JSON Patch diffing) would
// overflow the stack on it. Checked iteratively, before anything recursive runs.

export const MAX_DEPTH = 100

/** The path of the first value nested deeper than `max` levels, or undefined. */
export function tooDeep (root: unknown, max = MAX_DEPTH): string | undefined {
  return deeperThan(root, max) ? pathDeeperThan(root, max) : undefined
}

// Every review pays for this walk, so it allocates nothing per value: two stacks, no paths.
function deeperThan (root: unknown, max: number): boolean {
  const values: unknown[] = [root]
  const depths: number[] = [0]
  while (values.length > 0) {
    const value = values.pop()
    const depth = depths.pop() as number
    if (value === null || typeof value !== 'object') continue
    if (depth >= max) return true
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) { values.push(value[i]); depths.push(depth + 1) }
    } else {
      for (const k in value) {
        if (Object.hasOwn(value, k)) { values.push((value as Record<string, unknown>)[k]); depths.push(depth + 1) }
      }
    }
  }
  return false
}

// Only for a body already known to be too deep: the same walk, naming where it went too deep.
function pathDeeperThan (root: unknown, max: number): string | undefined {
  const stack: Array<[unknown, number, string]> = [[root, 0, '']]
  while (stack.length > 0) {
    const [value, depth, path] = stack.pop() as [unknown, number, string]
    if (value === null || typeof value !== 'object') continue
    if (depth >= max) return path
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) stack.push([value[i], depth + 1, `${path}[${i}]`])
    } else {
      for (const [k, v] of Object.entries(value)) stack.push([v, depth + 1, path === '' ? k : `${path}.${k}`])
    }
  }
  return undefined
}
