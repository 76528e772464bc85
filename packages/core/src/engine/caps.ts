/** Per-call caps (step 2 of the evaluation order): the largest single call a request may make. */
import type { Violation } from '../decision.js'
import type { CompiledPolicy } from '../policy/compile.js'
import type { MatchContext } from '../policy/match.js'
import { refusal } from './decide.js'
import type { Estimate } from './types.js'

/** The first per-call cap the estimate passes, as a `request_too_large` refusal, or `null`. */
export function checkCaps(
  policy: CompiledPolicy,
  estimate: Estimate | undefined,
  context: MatchContext,
): Violation | null {
  const input = estimate?.inputTokens ?? 0
  const output = estimate?.maxOutputTokens ?? policy.maxOutputTokens
  for (const cap of policy.caps) {
    if (!cap.match(context)) continue
    const over =
      cap.maxInputTokens !== undefined && input > cap.maxInputTokens
        ? `${input} input tokens, more than ${cap.maxInputTokens}`
        : cap.maxOutputTokens !== undefined && output > cap.maxOutputTokens
          ? `${output} output tokens, more than ${cap.maxOutputTokens}`
          : cap.maxTokens !== undefined && input + output > cap.maxTokens
            ? `${input + output} tokens, more than ${cap.maxTokens}`
            : null
    if (over) {
      const message = cap.message ?? `This call asks for ${over} per call (${cap.label}).`
      return refusal(cap.code ?? 'request_too_large', 'request_too_large', message, cap.label)
    }
  }
  return null
}
