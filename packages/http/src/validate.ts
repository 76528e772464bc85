/**
 * Shape checks of request bodies, one per operation. Each answers `null` when the body fits the
 * store contract, or a message naming the first field that does not (`counters[2].window.kind
 * must be one of …`), which the handler sends back with status 400. Bodies are parsed JSON, so
 * only JSON values arrive here; objects are checked, never copied.
 */
import type { Operation } from './protocol.js'

type Check = (value: unknown, path: string) => string | null

/** Most slots a rolling window may have (the policy schema allows 600). */
export const MAX_SLOTS = 10_000

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

const must = (path: string, what: string) => `${path} must be ${what}`

const string: Check = (v, path) => (typeof v === 'string' ? null : must(path, 'a string'))

const boolean: Check = (v, path) => (typeof v === 'boolean' ? null : must(path, 'a boolean'))

const finite: Check = (v, path) =>
  typeof v === 'number' && Number.isFinite(v) ? null : must(path, 'a finite number')

/** An adjustment: at most what the engine adjusts by (a credit of 1e9 currency units in micro-units). */
const adjustment: Check = (v, path) =>
  Number.isSafeInteger(v) && Math.abs(v as number) <= 1e15
    ? null
    : must(path, 'a whole number from -1e15 to 1e15')

const count: Check = (v, path) =>
  Number.isSafeInteger(v) && (v as number) >= 0 ? null : must(path, 'a non-negative safe integer')

const positive: Check = (v, path) =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 ? null : must(path, 'a positive number')

const nullable =
  (check: Check): Check =>
  (v, path) =>
    v === null ? null : check(v, path)

const optional =
  (check: Check): Check =>
  (v, path) =>
    v === undefined ? null : check(v, path)

const list =
  (check: Check): Check =>
  (v, path) => {
    if (!Array.isArray(v)) return must(path, 'an array')
    for (let i = 0; i < v.length; i++) {
      const problem = check(v[i], `${path}[${i}]`)
      if (problem) return problem
    }
    return null
  }

/** An object whose listed fields pass their checks (other fields are left alone). */
const object =
  (fields: Record<string, Check>): Check =>
  (v, path) => {
    if (!isObject(v)) return must(path, 'an object')
    for (const [name, check] of Object.entries(fields)) {
      const problem = check(Object.hasOwn(v, name) ? v[name] : undefined, path ? `${path}.${name}` : name)
      if (problem) return problem
    }
    return null
  }

const oneOf =
  (...values: string[]): Check =>
  (v, path) =>
    typeof v === 'string' && values.includes(v) ? null : must(path, `one of ${values.join(', ')}`)

const windows: Record<string, Check> = {
  fixed: object({ bounds: list(finite) }),
  sliding: (v, path) =>
    object({ sizeMs: positive, slotMs: positive })(v, path) ??
    ((v as { sizeMs: number; slotMs: number }).sizeMs / (v as { slotMs: number }).slotMs > MAX_SLOTS
      ? must(path, `a rolling window of at most ${MAX_SLOTS} slots`)
      : null),
  bucket: object({ intervalMs: positive }),
  lease: object({ ttlMs: count }),
}

const windowSpec: Check = (v, path) => {
  if (!isObject(v)) return must(path, 'an object')
  const kind = v.kind
  if (typeof kind !== 'string' || !Object.hasOwn(windows, kind))
    return must(`${path}.kind`, 'one of fixed, sliding, bucket, lease')
  return windows[kind]!(v, path)
}

const counterSpec: Check = object({
  key: string,
  metric: string,
  amount: count,
  cap: finite,
  enforce: boolean,
  scope: optional(string),
  window: windowSpec,
  expiry: oneOf('keep', 'release'),
  alerts: optional(list(finite)),
  trip: optional(object({ cooldownMs: count })),
  throttle: optional(object({ at: finite, limit: finite, periodMs: positive })),
})

const amounts: Check = (v, path) => {
  if (v === null) return null
  if (!isObject(v)) return must(path, 'an object of amounts per metric, or null')
  for (const [metric, amount] of Object.entries(v)) {
    const problem = count(amount, `${path}[${JSON.stringify(metric)}]`)
    if (problem) return problem
  }
  return null
}

const meta: Check = (v, path) => object({ model: string })(v, path)

/**
 * A settle or release, or an abandon (`abandon: true`, only with `amounts: null`). A body without
 * `abandon` is a plain commit, as older clients send it.
 */
const commit: Check = (v, path) =>
  object({ id: string, amounts, abandon: optional(boolean) })(v, path) ??
  ((v as { abandon?: boolean }).abandon === true && (v as { amounts: unknown }).amounts !== null
    ? must('abandon', 'true only with amounts: null (an abandon releases)')
    : null)

/** The check of each operation's body. */
export const checks: Record<Operation, Check> = {
  reserve: object({ id: string, counters: list(counterSpec), ttlMs: count, blocks: list(string), meta }),
  commit,
  read: object({ counters: list(counterSpec) }),
  adjust: object({ counter: counterSpec, amount: adjustment }),
  setOverride: object({ key: string, cap: nullable(finite), scope: optional(string) }),
  block: object({ marker: string, code: nullable(string) }),
  blocked: object({ markers: list(string) }),
  lookup: object({ id: string }),
  now: object({}),
}
