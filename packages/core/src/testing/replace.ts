/**
 * `replaceAt`: a value with one node swapped, for property tests that put any value at any place
 * of a realistic input (a policy, a request, a provider's answer) and check that it is refused
 * cleanly.
 */

/**
 * A copy of `value` with the node at `path` replaced by `replacement`. Each step of `path` picks a
 * key of that level by index (modulo the number of keys; a negative step counts from the end, a
 * fraction is cut, NaN or an infinity picks the first), so any list of numbers names a node; an
 * empty path, or a step into something that is no object or has no keys, replaces right there.
 * `value` itself is never changed.
 *
 * @example
 * // a policy with any value anywhere is read, or refused with `invalid_policy`, never another error
 * const readOrRefused = (input: unknown) => {
 *   try { parsePolicy(input as PolicyInput); return true }
 *   catch (error) { return TollgateError.isInstance(error) && error.code === 'invalid_policy' }
 * }
 * fc.assert(fc.property(fc.array(fc.nat(20), { maxLength: 5 }), fc.anything(), (path, value) =>
 *   readOrRefused(replaceAt(policy, path, value))))
 */
export function replaceAt(value: unknown, path: readonly number[], replacement: unknown): unknown {
  if (path.length === 0 || typeof value !== 'object' || value === null) return replacement
  const keys = Object.keys(value)
  if (keys.length === 0) return replacement
  // any number picks a key: negative steps count from the end, fractions are cut, NaN is the first
  const step = Math.trunc(path[0]!)
  const key = keys[Number.isFinite(step) ? ((step % keys.length) + keys.length) % keys.length : 0]!
  const copy = (Array.isArray(value) ? [...value] : { ...value }) as Record<string, unknown>
  copy[key] = replaceAt((value as Record<string, unknown>)[key], path.slice(1), replacement)
  return copy
}
