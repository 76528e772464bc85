/**
 * A Proxy over an SDK client that replaces a few methods deep inside it (e.g.
 * `chat.completions.create`) and leaves everything else as it is. Resources reached through
 * the proxy see the proxy as their `_client`, so the SDKs' own helpers (`stream`, `parse`,
 * `runTools`) call the replaced methods too. A new client the client makes of itself
 * (`withOptions()`) is wrapped in turn. The traps do little: a property that leads to no
 * replacement is read straight from the target, and replaced methods and bound client methods
 * are made once.
 */

type AnyFunction = (...args: never[]) => unknown

/** Replacements: resource path → method name → the new method, given the original (bound). */
export type Replacements = Record<
  string,
  Record<string, (original: (...args: never[]) => unknown) => unknown>
>

/**
 * The client methods that return a new client of the same kind (openai 6 and @anthropic-ai/sdk
 * 1.12 have only `withOptions`): left unwrapped, that client would call the provider ungated.
 */
const CLIENT_COPIES: ReadonlySet<string> = new Set(['withOptions'])

/**
 * @param rewrap wraps a new client made by one of the client's `CLIENT_COPIES` methods
 *
 * @example
 * proxyClient(client, { 'chat.completions': { create: (original) => (body) => original(body) } }, rewrap)
 */
export function proxyClient<C extends object>(
  client: C,
  replacements: Replacements,
  rewrap: (copy: C) => C,
): C {
  /** Every path that leads to a replacement: 'chat', 'chat.completions', 'responses'… */
  const leading = new Set<string>()
  for (const path of Object.keys(replacements)) {
    const parts = path.split('.')
    for (let i = 1; i <= parts.length; i++) leading.add(parts.slice(0, i).join('.'))
  }
  const proxies = new WeakMap<object, object>()

  function proxy<T extends object>(target: T, path: string): T {
    const known = proxies.get(target)
    if (known) return known as T
    const own = replacements[path]
    const isRoot = path === ''
    /** property → [the value it was made from, what the proxy returns for it] */
    const made = new Map<string, [unknown, unknown]>()
    const result = new Proxy(target, {
      get(object, property) {
        if (property === '_client' && !isRoot) return root
        const value = Reflect.get(object, property, object)
        if (typeof property !== 'string' || value === null) return value
        const kind = typeof value
        if (kind !== 'function' && kind !== 'object') return value
        const cached = made.get(property)
        if (cached !== undefined && cached[0] === value) return cached[1]
        let out: unknown = value
        if (kind === 'function' && own && Object.hasOwn(own, property))
          out = own[property]!((value as AnyFunction).bind(object))
        else if (kind === 'object') {
          const child = isRoot ? property : `${path}.${property}`
          if (leading.has(child)) out = proxy(value as object, child)
        }
        // the client's own methods may use private state: call them on the client itself
        else if (isRoot && CLIENT_COPIES.has(property)) out = copying(value as AnyFunction, object)
        else if (isRoot) out = (value as AnyFunction).bind(object)
        made.set(property, [value, out])
        return out
      },
    })
    proxies.set(target, result)
    return result
  }
  /** `withOptions` and the like, whose new client is wrapped as this one is. */
  function copying(method: AnyFunction, target: object) {
    return (...args: never[]) => {
      const copy = method.apply(target, args)
      if (copy === target) return root
      return typeof copy === 'object' && copy !== null ? rewrap(copy as C) : copy
    }
  }
  const root: C = proxy(client, '')
  return root
}
