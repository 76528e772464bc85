/**
 * Load a policy from an object, JSON or YAML text. A bad policy is refused with one
 * `TollgateError` (code `invalid_policy`) that lists every problem with its path.
 */
import { CST, Lexer, parseAllDocuments } from 'yaml'
import { type Issue, TollgateError } from '../errors.js'
import { type CompiledPolicy, compilePolicy } from './compile.js'
import type { PolicyInput } from './input.js'
import { policySchema, ruleSchema } from './schema.js'

/**
 * Validate and compile a policy. Strings are read as JSON when they start with `{`,
 * otherwise as YAML. A compiled policy passes through unchanged.
 *
 * @example
 * const policy = parsePolicy({ rules: [{ id: 'daily', per: 'user', limits: { tokens: 5000 }, window: 'day' }] })
 */
export function parsePolicy(input: PolicyInput): CompiledPolicy
/**
 * Validate and compile a policy. Strings are read as JSON when they start with `{`,
 * otherwise as YAML. A compiled policy passes through unchanged.
 *
 * @example
 * const policy = parsePolicy(readFileSync('policy.yaml', 'utf8'))
 */
export function parsePolicy(input: PolicyInput | CompiledPolicy | string): CompiledPolicy
// The first signature types a policy written in the call as a `PolicyInput` alone: its fields show
// their documentation, and a mistake is reported against them (against the union, TypeScript matched
// the object with `CompiledPolicy` and reported its fields instead).
export function parsePolicy(input: PolicyInput | CompiledPolicy | string): CompiledPolicy {
  if (isCompiled(input)) return input
  let data: unknown = input
  if (typeof input === 'string') {
    // a byte order mark, as some editors save text, is not part of the policy
    if (input.charCodeAt(0) === 0xfeff) input = input.slice(1)
    const json = input.trimStart().startsWith('{')
    const deep = json ? undefined : deepLine(input)
    if (deep !== undefined) {
      const message = `it nests deeper than ${MAX_NESTING} levels (line ${deep})`
      throw new TollgateError('invalid_policy', `Policy is not valid JSON or YAML: ${message}`, {
        issues: [{ path: [], message }],
      })
    }
    try {
      data = json ? readJson(input) : readYaml(input)
      if (data === null || data === undefined || typeof data === 'string') {
        const message =
          typeof data === 'string'
            ? `the text ${JSON.stringify(input.length > 80 ? `${input.slice(0, 80)}…` : input)} is not a policy: a string is read as the policy's JSON or YAML text; to load a file, read it first (readFileSync(path, 'utf8'))`
            : 'the policy text is empty'
        throw new TollgateError('invalid_policy', `Invalid policy (1 problem):\n  - (policy): ${message}`, {
          issues: [{ path: [], message }],
        })
      }
    } catch (error) {
      if (TollgateError.isInstance(error)) throw error
      throw new TollgateError(
        'invalid_policy',
        `Policy is not valid JSON or YAML: ${(error as Error).message}`,
        {
          issues: [{ path: [], message: (error as Error).message }],
          cause: error,
        },
      )
    }
  }
  const parsed = policySchema.safeParse(data)
  const issues: Issue[] = protoKeys(data)
  if (!parsed.success)
    for (const issue of parsed.error.issues)
      issues.push({
        path: issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p)),
        // A refused record key: the key's own problem says more than "Invalid key in record".
        message: (issue.code === 'invalid_key' && issue.issues[0]?.message) || issue.message,
      })
  const compiled = parsed.success ? compilePolicy(parsed.data, issues) : undefined
  if (!parsed.success) issues.push(...laterProblems(data, issues))
  if (issues.length > 0 || !compiled) {
    const lines = issues.map(
      (issue) => `  - ${issue.path.length ? issue.path.join('.') : '(policy)'}: ${issue.message}`,
    )
    throw new TollgateError(
      'invalid_policy',
      `Invalid policy (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n${lines.join('\n')}`,
      { issues },
    )
  }
  return compiled
}

/**
 * The cross-field problems `compilePolicy` finds in the rules that pass the schema, when the schema
 * refused only rules (`found` are its problems): listed with the schema's, so that a policy is
 * fixed in one round rather than two. Rules the schema refused are left out and the others keep
 * their paths. Nothing is added when the schema refused anything but rules: the checks would run
 * against a policy missing the part they refer to (a model, a unit), and name problems that are not
 * there; nor are problems of access entries, which may name a rule left out.
 */
function laterProblems(data: unknown, found: readonly Issue[]): Issue[] {
  const rules: unknown = (data as { rules?: unknown } | null)?.rules
  if (!Array.isArray(rules) || found.length === 0) return []
  if (!found.every((issue) => issue.path[0] === 'rules' && typeof issue.path[1] === 'number')) return []
  const kept: number[] = []
  rules.forEach((rule, i) => {
    if (ruleSchema.safeParse(rule).success) kept.push(i)
  })
  const pruned = policySchema.safeParse({ ...(data as object), rules: kept.map((i) => rules[i]) })
  if (!pruned.success) return []
  const later: Issue[] = []
  compilePolicy(pruned.data, later)
  return later.flatMap((issue) => {
    if (issue.path[0] === 'access') return []
    if (issue.path[0] !== 'rules') return [issue]
    return [{ ...issue, path: ['rules', kept[issue.path[1] as number]!, ...issue.path.slice(2)] }]
  })
}

/**
 * YAML text as data. What yaml only warns about (an unresolved tag such as `!secret`, an unknown
 * directive) is refused like an error: the value would silently be read as plain text. yaml would
 * also write those warnings to the process (`process.emitWarning`), once per call.
 */
function readYaml(text: string): unknown {
  const docs = parseAllDocuments(text, { logLevel: 'silent' })
  // a second document (after `---`) was dropped without a word, however wrong it was
  if (docs.length > 1) {
    const message = `the text holds ${docs.length} YAML documents (separated by "---"): a policy is one`
    throw new TollgateError('invalid_policy', `Policy is not valid JSON or YAML: ${message}`, {
      issues: [{ path: [], message }],
    })
  }
  const doc = docs[0]
  if (doc === undefined) return null
  const problem = doc.errors[0] ?? doc.warnings[0]
  if (problem) throw problem
  return doc.toJS()
}

/**
 * JSON text as data, refused when an object repeats a key: `JSON.parse` keeps the last of two
 * without a word (`{"requests": 10, "requests": 100000}` loaded a cap of 100000), where YAML refuses
 * them. The keys are found by a scan of the text `JSON.parse` accepted (strings skipped whole).
 */
function readJson(text: string): unknown {
  const data: unknown = JSON.parse(text)
  const issues: Issue[] = []
  const open: { keys: Set<string> | undefined; at: string | number }[] = []
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    const top = open[open.length - 1]
    if (c === QUOTE) {
      let end = i + 1
      while (text.charCodeAt(end) !== QUOTE) end += text.charCodeAt(end) === BACKSLASH ? 2 : 1
      let next = end + 1
      while (next < text.length && JSON_SPACE.has(text.charCodeAt(next))) next++
      if (top?.keys !== undefined && text.charCodeAt(next) === COLON) {
        const key = JSON.parse(text.slice(i, end + 1)) as string
        if (top.keys.has(key))
          issues.push({
            path: [...open.slice(0, -1).map((frame) => frame.at), key],
            message: `the key "${key}" is given twice (JSON would keep the last one silently)`,
          })
        top.keys.add(key)
        top.at = key
      }
      i = end
    } else if (c === BRACE) open.push({ keys: new Set(), at: '' })
    else if (c === BRACKET) open.push({ keys: undefined, at: 0 })
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) open.pop()
    else if (c === COMMA && top !== undefined && top.keys === undefined) top.at = (top.at as number) + 1
  }
  if (issues.length > 0) {
    const lines = issues.map((issue) => `  - ${issue.path.join('.') || '(policy)'}: ${issue.message}`)
    throw new TollgateError(
      'invalid_policy',
      `Invalid policy (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n${lines.join('\n')}`,
      { issues },
    )
  }
  return data
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COLON = 0x3a
const COMMA = 0x2c
const BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d
/** Whitespace JSON allows between tokens: space, tab, line feed, carriage return. */
const JSON_SPACE: ReadonlySet<number> = new Set([0x20, 0x09, 0x0a, 0x0d])

/** The deepest nesting of collections a YAML policy may have (real ones have fewer than ten). */
const MAX_NESTING = 64

/**
 * The line where YAML text nests collections deeper than {@link MAX_NESTING}, or `undefined`.
 * The yaml parser recurses once per level: past about 800 levels it overflows the stack, and a
 * second, deeper text in the same process then kills it (V8's regexp compiler runs out of memory
 * at the stack's edge, which no `catch` sees). The text is looked at as yaml's lexer (linear, no
 * recursion) tokenizes it, so brackets in quotes and comments do not count. A line's block depth
 * is the number of open indentation levels plus its `-` and `?` indicators; flow brackets add to it.
 */
function deepLine(text: string): number | undefined {
  const levels: number[] = []
  let flow = 0
  let line = 1
  let indent = 0
  let lineStart = true
  let indicators = 0
  for (const token of new Lexer().lex(text)) {
    const type = CST.tokenType(token)
    if (type === 'newline') {
      line++
      lineStart = true
      indent = 0
      indicators = 0
      continue
    }
    if (type === 'space') {
      if (lineStart) indent = token.length
      continue
    }
    if (type === 'comment' || type === 'doc-mode' || type === 'byte-order-mark') continue
    if (lineStart) {
      lineStart = false
      if (flow === 0) {
        while (levels.length > 0 && levels[levels.length - 1]! >= indent) levels.pop()
        levels.push(indent)
      }
    }
    if (type === 'flow-seq-start' || type === 'flow-map-start') flow++
    else if (type === 'flow-seq-end' || type === 'flow-map-end') flow = Math.max(0, flow - 1)
    else if (type === 'seq-item-ind' || type === 'explicit-key-ind') indicators++
    if (levels.length + indicators + flow > MAX_NESTING) return line
  }
  return undefined
}

/**
 * Identity helper that type-checks a policy object written in TypeScript and keeps its literal
 * types. Lists and objects may be readonly at any depth, so an `as const` policy is a policy. An
 * editor shows the fields' documentation where the object is typed as a {@link PolicyInput}
 * (`satisfies PolicyInput`, or written in `createTollgate` or `parsePolicy`); here it shows the
 * object's own types.
 *
 * @example
 * const policy = definePolicy({ rules: [{ id: 'daily', per: 'user', limits: { tokens: 5000 }, window: 'day' }] })
 */
export function definePolicy<const T extends PolicyInput>(policy: T): T {
  return policy
}

/**
 * Every own `__proto__` key in the policy data (JSON and YAML parsers make them), as problems: the
 * schema would drop such a key without a word, so that `match: { subject: { __proto__: … } }` would
 * match every request.
 */
function protoKeys(data: unknown, path: (string | number)[] = [], out: Issue[] = []): Issue[] {
  if (typeof data !== 'object' || data === null || path.length > 32) return out
  if (Object.hasOwn(data, '__proto__'))
    out.push({ path: [...path, '__proto__'], message: 'a key named "__proto__" is not allowed' })
  const array = Array.isArray(data)
  for (const [key, value] of Object.entries(data)) protoKeys(value, [...path, array ? Number(key) : key], out)
  return out
}

function isCompiled(input: unknown): input is CompiledPolicy {
  return typeof input === 'object' && input !== null && 'rulesById' in input && input.rulesById instanceof Map
}
