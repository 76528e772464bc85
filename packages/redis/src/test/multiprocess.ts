/**
 * What the multi-process test (`multiprocess.test.ts`) and its worker processes (`worker.ts`)
 * share: the policy, its caps and the messages of the IPC protocol. No side effects, so that the
 * test can import it without starting a worker.
 */
import type { PolicyInput } from '@tollgate/core'

/** Shared by every process: a lifetime token budget and a concurrency cap, on one tenant. */
export const ORG = 'acme'
export const TOKEN_CAP = 150_000
export const CONCURRENCY_CAP = 50
export const policy: PolicyInput = {
  tenant: 'org',
  rules: [
    {
      id: 'budget',
      per: 'org',
      match: { feature: 'chat' },
      limits: { tokens: TOKEN_CAP, requests: 1_000_000 },
      window: 'lifetime',
      code: 'BUDGET',
    },
    {
      id: 'inflight',
      per: 'org',
      match: { feature: 'agent' },
      limits: { concurrency: CONCURRENCY_CAP },
      code: 'INFLIGHT',
    },
  ],
}
/** Long enough that a busy 2-core machine never turns a slow answer into a failure-mode decision. */
export const TIMEOUT_MS = 10_000

/**
 * Parent → worker. A worker starts a phase's calls as soon as the message comes; the parent holds
 * Redis paused for writes until every worker has a call waiting there, so the calls overlap.
 */
export type Command =
  | { type: 'reserve' }
  | { type: 'settle' }
  | { type: 'duplicate'; budget: Held[]; agent: string[] }
  | { type: 'exit' }

/** How a phase ran on one worker. */
export interface Timing {
  /** The most calls this worker had in flight at once. */
  maxInFlight: number
}

export interface Held {
  id: string
  /** Estimated tokens held. */
  tokens: number
}

/** Worker → parent. */
export type Report =
  | { type: 'ready' }
  | {
      type: 'reserved'
      budget: Held[]
      /** Estimates of the refused budget calls. */
      budgetDenied: number[]
      agent: string[]
      agentDenied: number
      /** Anything other than an admission or a refusal by the expected rule: must stay empty. */
      unexpected: string[]
      timing: Timing
    }
  | {
      type: 'settled'
      /** Tokens actually charged: the actuals of settled calls (0 for releases). */
      actualTokens: number
      settled: number
      released: number
      /** Settles that went beyond their estimate. */
      overruns: number
      unexpected: string[]
      timing: Timing
    }
  | { type: 'duplicated'; duplicates: number; unexpected: string[]; timing: Timing }
  | { type: 'failed'; error: string }
