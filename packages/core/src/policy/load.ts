/**
 * Load a policy from an object, JSON or YAML text. A bad policy is refused with one
 * `TollgateError` (code `invalid_policy`) that lists every problem with its path.
 */
import { CST, Lexer, parseDocument } from 'yaml'
import { type Issue, TollgateError } from '../errors.js'
import { type CompiledPolicy, compilePolicy } from './compile.js'
import { type PolicyInput, policySchema, ruleSchema } from './schema.js'

/**
 * Validate and compile a policy. Strings are read as JSON when they start with `{`,
 * otherwise as YAML. A compiled policy passes through unchanged.
 *
 * @example
 * const policy = parsePolicy(readFileSync('policy.yaml', 'utf8'))
 */
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
      data = json ? JSON.parse(input) : readYaml(input)
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
  const doc = parseDocument(text, { logLevel: 'silent' })
  const problem = doc.errors[0] ?? doc.warnings[0]
  if (problem) throw problem
  return doc.toJS()
}

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

/** Identity helper that type-checks a policy object written in TypeScript. */
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
