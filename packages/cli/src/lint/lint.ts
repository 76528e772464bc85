/**
 * `lintPolicy`: schema errors (every problem `parsePolicy` finds, with its path) and
 * warnings for policy smells.
 */
import { type PolicyInput, parsePolicy, TollgateError } from '@tollgate/core'
import { smells } from './smells.js'
import type { Finding, LintResult } from './types.js'

/**
 * Lint a policy: JSON or YAML text, or a policy object.
 *
 * @example
 * const result = lintPolicy(readFileSync('policy.yaml', 'utf8'))
 * for (const finding of [...result.errors, ...result.warnings]) console.log(formatPath(finding.path), finding.message)
 */
export function lintPolicy(input: string | PolicyInput): LintResult {
  let policy: ReturnType<typeof parsePolicy>
  try {
    policy = parsePolicy(input)
  } catch (error) {
    if (!TollgateError.isInstance(error) || error.code !== 'invalid_policy') throw error
    const syntax = error.message.startsWith('Policy is not valid JSON or YAML')
    const errors: Finding[] = error.issues.map((issue) => ({
      severity: 'error',
      code: syntax ? 'syntax' : 'schema',
      path: issue.path,
      message: issue.message,
    }))
    return { ok: false, errors, warnings: [], policy: null }
  }
  return { ok: true, errors: [], warnings: smells(policy), policy }
}

/** A finding's path as text, e.g. `rules.2.limits.tokens`; `(policy)` for the whole policy. */
export function formatPath(path: readonly (string | number)[]): string {
  return path.length === 0 ? '(policy)' : path.join('.')
}
