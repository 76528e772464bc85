import { estimateChatCompletion } from '@tollgate/llm'
const N = 100000
const bench = (name, fn) => { for (let i = 0; i < 20000; i++) fn(i + 1e6); const t = performance.now(); for (let i = 0; i < N; i++) fn(i); return ((performance.now() - t) / N * 1000) }
const sys = 'You are a helpful assistant. Answer in one short sentence.'
for (let r = 0; r < 3; r++) {
  const a = bench('sys+unique', (i) => estimateChatCompletion({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: sys }, { role: 'user', content: `Say hello in five words. (request ${i})` }] }, { defaultMaxOutputTokens: 1024 }))
  const b = bench('unique only', (i) => estimateChatCompletion({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `Say hello in five words. (request ${i})` }] }, { defaultMaxOutputTokens: 1024 }))
  const c = bench('sys only', (i) => estimateChatCompletion({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: sys }] }, { defaultMaxOutputTokens: 1024 }))
  console.log('sys+unique', a.toFixed(2), 'unique only', b.toFixed(2), 'sys only (cached)', c.toFixed(2))
}
