import OpenAI from 'openai'
import { createTollgate } from '@tollgate/core'
import { withDefaultPrices, wrapOpenAI } from '@tollgate/llm'
const gate = createTollgate({ policy: withDefaultPrices({ rules: [
  { id: 'rpm', per: 'user', limits: { requests: 1_000_000_000 }, window: '60s' },
  { id: 'daily', per: 'user', limits: { tokens: 1e12 }, window: 'day' },
  { id: 'budget', per: 'org', limits: { cost: 1e6 }, window: 'month' },
] }) })
const text = JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, message: { role: 'assistant', content: 'Hello there', refusal: null }, finish_reason: 'stop', logprobs: null }], usage: { prompt_tokens: 20, completion_tokens: 7, total_tokens: 27 } })
const fetch = async () => new Response(text, { headers: { 'content-type': 'application/json' } })
const client = new OpenAI({ apiKey: 'b', baseURL: 'http://x/v1', maxRetries: 0, fetch })
const wrapped = wrapOpenAI(client, gate, { subject: { org: 'acme', user: 'u1' } })
const body = (i) => ({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'You are a helpful assistant. Answer in one short sentence.' }, { role: 'user', content: `Say hello in five words. (request ${i})` }] })
const med = (a) => a.sort((x, y) => x - y)[a.length >> 1] * 1000
for (let r = 0; r < 3; r++) {
  const d = []
  for (let i = 0; i < 6000; i++) {
    const b = body(i)
    let t = performance.now(); await client.chat.completions.create(b); const x = performance.now() - t
    t = performance.now(); await wrapped.chat.completions.create(b); const y = performance.now() - t
    if (i > 1000) d.push(y - x)
  }
  console.log('paired median added us', med(d).toFixed(1))
}
const real = gate
const decision = await real.reserve({ subject: { org: 'acme', user: 'u1' }, model: 'gpt-4o-mini', estimate: { inputTokens: 30, maxOutputTokens: 1024 } })
const stub = { policy: real.policy, reserve: async () => decision, settle: async () => ({ status: 'settled', amounts: {} }), release: async () => ({}) }
const stubbed = wrapOpenAI(client, stub, { subject: { org: 'acme', user: 'u1' } })
const d = []
for (let i = 0; i < 6000; i++) {
  const b = body(i)
  let t = performance.now(); await client.chat.completions.create(b); const x = performance.now() - t
  t = performance.now(); await stubbed.chat.completions.create(b); const y = performance.now() - t
  if (i > 1000) d.push(y - x)
}
console.log('stub gate: paired median added us', med(d).toFixed(1))
const N = 20000; let t = performance.now()
for (let i = 0; i < N; i++) { const x = await real.reserve({ subject: { org: 'acme', user: 'u1' }, attributes: {}, model: 'gpt-4o-mini', estimate: { inputTokens: 30, maxOutputTokens: 1024 } }); await real.settle(x.reservation.id, { inputTokens: 20, outputTokens: 7 }) }
console.log('core reserve+settle tight loop us', ((performance.now() - t) / N * 1000).toFixed(1))
