/** What `lintPolicy` reports. */
import type { CompiledPolicy } from '@tollgate/core'

/** `error`: the policy is refused; `warning`: it loads, but something in it is probably a mistake. */
export type Severity = 'error' | 'warning'

/** One problem found in a policy. */
export interface Finding {
  severity: Severity
  /**
   * Stable id of the check, e.g. `child-cap-above-parent`; `schema` for every error that
   * `parsePolicy` reports (bad fields, cross-field problems), `syntax` for unreadable JSON or YAML.
   */
  code: string
  /** Where in the policy, e.g. `['rules', 2, 'limits', 'tokens']`; empty for the whole policy. */
  path: (string | number)[]
  message: string
}

/** The result of linting one policy. */
export interface LintResult {
  /** `true` when there are no errors (warnings allowed). */
  ok: boolean
  errors: Finding[]
  warnings: Finding[]
  /** The compiled policy, `null` when it has errors. */
  policy: CompiledPolicy | null
}
