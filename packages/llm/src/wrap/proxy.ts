/**
 * A Proxy over an SDK client that replaces a few methods deep inside it (e.g.
 * `chat.completions.create`) and leaves everything else as it is. Resources reached through
 * the proxy see the proxy as their `_client`, so the SDKs' own helpers (`stream`, `parse`,
 * `runTools`) call the replaced methods too.
 */

/** Replacements: resource path → method name → the new method, given the original (bound). */
export type Replacements = Record<
  string,
  Record<string, (original: (...args: never[]) => unknown) => unknown>
>

/**
 * @example
 * proxyClient(client, { 'chat.completions': { create: (original) => (body) => original(body) } })
 */
export function proxyClient<C extends object>(client: C, replacements: Replacements): C {
  const paths = Object.keys(replacements)
  const proxies = new WeakMap<object, object>()
  const methods = new WeakMap<object, Map<string, unknown>>()

  const leadsTo = (path: string) => paths.some((p) => p === path || p.startsWith(`${path}.`))

  function proxy<T extends object>(target: T, path: string): T {
    const known = proxies.get(target)
    if (known) return known as T
    const own = replacements[path]
    const made = new Proxy(target, {
      get(object, property) {
        if (property === '_client' && path !== '') return root
        const value = Reflect.get(object, property, object)
        if (typeof property !== 'string') return value
        if (own && property in own && typeof value === 'function') {
          const cache = methods.get(object) ?? new Map<string, unknown>()
          methods.set(object, cache)
          if (!cache.has(property)) cache.set(property, own[property]!(value.bind(object)))
          return cache.get(property)
        }
        const child = path === '' ? property : `${path}.${property}`
        if (typeof value === 'object' && value !== null && leadsTo(child)) return proxy(value, child)
        // the client's own methods may use private state: call them on the client itself
        if (typeof value === 'function' && path === '') return value.bind(object)
        return value
      },
    })
    proxies.set(target, made)
    return made
  }

  const root: C = proxy(client, '')
  return root
}
