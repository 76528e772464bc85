import { Session } from 'node:inspector/promises'
import { findSourceMap } from 'node:module'
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
const decision = await gate.reserve({ subject: { org: 'acme', user: 'u1' }, model: 'gpt-4o-mini', estimate: { inputTokens: 30, maxOutputTokens: 1024 } })
const stub = process.env.STUB ? { policy: gate.policy, reserve: async () => decision, settle: async () => ({ status: 'settled', amounts: {} }), release: async () => ({}) } : gate
const wrapped = wrapOpenAI(client, stub, { subject: { org: 'acme', user: 'u1' } })
const body = (i) => ({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'You are a helpful assistant. Answer in one short sentence.' }, { role: 'user', content: `Say hello in five words. (request ${i})` }] })
const loop = async (c, n) => { for (let i = 0; i < n; i++) await c.chat.completions.create(body(i)) }
const group = async (c) => {
  await loop(c, 5000)
  const s = new Session(); s.connect(); await s.post('Profiler.enable'); await s.post('Profiler.start')
  await loop(c, 20000)
  const { profile } = await s.post('Profiler.stop')
  const self = new Map(); profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + profile.timeDeltas[i]))
  const g = new Map()
  for (const n of profile.nodes) {
    const u = n.callFrame.url
    const k = process.env.FN ? `${n.callFrame.functionName} ${u.split('/').slice(-3).join('/')}:${n.callFrame.lineNumber}` : !u ? n.callFrame.functionName : u.includes('/openai/') ? 'sdk' : u.includes('gpt-tokenizer') ? 'tokenizer' : u.includes('/core/dist') ? 'core' : u.includes('/llm/dist') ? 'llm' : u.startsWith('node:') ? 'node' : u
    g.set(k, (g.get(k) ?? 0) + (self.get(n.id) ?? 0))
  }
  return g
}
const b = await group(client); const w = await group(wrapped)
const keys = [...new Set([...b.keys(), ...w.keys()])].sort((x, y) => ((w.get(y) ?? 0) - (b.get(y) ?? 0)) - ((w.get(x) ?? 0) - (b.get(x) ?? 0)))
let tb = 0, tw = 0; for (const v of b.values()) tb += v; for (const v of w.values()) tw += v
console.log('total us/call', (tb / 20000).toFixed(1), (tw / 20000).toFixed(1))
for (const k of keys.slice(0, Number(process.env.TOP ?? 12))) console.log(k.slice(-70).padEnd(70), ((b.get(k) ?? 0) / 20000).toFixed(2).padStart(7), ((w.get(k) ?? 0) / 20000).toFixed(2).padStart(7))
