/**
 * Load a policy from an object, JSON or YAML text. A bad policy is refused with one
 * `TollgateError` (code `invalid_policy`) that lists every problem with its path.
 */
import { parse as parseYaml } from 'yaml'
import { type Issue, TollgateError } from '../errors.js'
import { type CompiledPolicy, compilePolicy } from './compile.js'
import { type PolicyInput, policySchema } from './schema.js'

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
    try {
      data = input.trimStart().startsWith('{') ? JSON.parse(input) : parseYaml(input)
    } catch (error) {
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
