/**
 * The headline workload of the plain-JS bench tools (`ab-memory.mjs`, `ab-process.mjs`,
 * `redis-layout.mjs`), the same as the memory suite's in `memory.ts`: six limits (user, team and org
 * rules, each with requests and tokens over calendar minutes, never binding), 1000 users in 50 teams
 * in 5 orgs, one estimate and one usage report.
 */
export const subjects = Array.from({ length: 1000 }, (_, i) => ({
  org: `org-${(i % 50) % 5}`,
  team: `team-${i % 50}`,
  user: `user-${i}`,
}))
export const limits = { requests: 1e9, tokens: 1e12 }
export const policy = {
  rules: ['user', 'team', 'org'].map((d) => ({ id: d, per: d, limits, window: 'minute' })),
}
export const estimate = { inputTokens: 100, maxOutputTokens: 100 }
export const usage = { inputTokens: 100, outputTokens: 80 }
