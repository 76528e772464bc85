/** `tollgate lint` output: readable text, or JSON for machines. */
import { formatPath } from './lint.js'
import type { LintResult } from './types.js'

/** The lint result as text, one finding a line, errors first, then a one-line verdict. */
export function formatLint(result: LintResult, file: string): string {
  const lines: string[] = []
  for (const finding of [...result.errors, ...result.warnings]) {
    lines.push(`${file}: ${finding.severity} ${formatPath(finding.path)} [${finding.code}]`)
    lines.push(`  ${finding.message.replaceAll('\n', '\n  ')}`)
  }
  const errors = result.errors.length
  const warnings = result.warnings.length
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`
  lines.push(
    errors + warnings === 0
      ? `${file}: ok (${plural(result.policy?.rules.length ?? 0, 'rule')})`
      : `${file}: ${plural(errors, 'error')}, ${plural(warnings, 'warning')}`,
  )
  return lines.join('\n')
}

/** The lint result as JSON (the compiled policy left out). */
export function lintJson(result: LintResult, file: string): string {
  return JSON.stringify({ file, ok: result.ok, errors: result.errors, warnings: result.warnings }, null, 2)
}
