/**
 * @tollgate/cli — the `tollgate` command and the functions behind it: lint a policy,
 * replay traffic through it on a virtual clock, explain how it treats one request.
 *
 * @example
 * import { lintPolicy, simulateFile, formatSummary } from '@tollgate/cli'
 * const { summary } = await simulateFile(readFileSync('policy.yaml', 'utf8'), 'traffic.jsonl')
 * console.log(formatSummary(summary))
 */
export { explain } from './explain/explain.js'
export { formatExplanation } from './explain/format.js'
export type {
  ExplainDecision,
  ExplainInput,
  ExplainLimit,
  ExplainOptions,
  ExplainStep,
  Explanation,
} from './explain/types.js'
export { formatLint, lintJson } from './lint/format.js'
export { DIMENSION_CHAIN } from './lint/hierarchy.js'
export { formatPath, lintPolicy } from './lint/lint.js'
export type { Finding, LintResult, Severity } from './lint/types.js'
export { EXIT, type Io, main } from './main.js'
export type { CollectorOptions } from './simulate/collect.js'
export { type SimulateFileOptions, shardDimension, simulateFile } from './simulate/file.js'
export { type ReportInput, renderReport } from './simulate/report.js'
export { type SimulateOptions, type SimulationResult, simulate, type Traffic } from './simulate/run.js'
export { type Hits, mergeStates, type Samples, type SimulationState } from './simulate/state.js'
export { formatSummary } from './simulate/summary.js'
export { parseLine, readLines, TrafficError, type TrafficLine } from './simulate/traffic.js'
export type * from './simulate/types.js'
