/**
 * `POST /api/chat` with quotas per API key and per project. Free-plan keys may only use low-tier
 * models; every response carries rate-limit headers; refusals are OpenAI-shaped.
 */

import { withTollgate } from '@tollgate/next'
import { apiKeyIdentity, readJson } from '@tollgate/web'
import type { NextRequest } from 'next/server.js'
import { complete } from '../../../lib/model.js'
import { gate, keys, ready } from '../../../lib/tollgate.js'

// ioredis and node:crypto-backed stores need Node.js; see docs/adapters.md for the Edge runtime
export const runtime = 'nodejs'

interface ChatBody {
  model?: string
  prompt?: string
  max_tokens?: number
}
const body = async (request: NextRequest) => ((await readJson(request)) ?? {}) as ChatBody
const byKey = apiKeyIdentity(keys)

export const POST = withTollgate(
  async (request, { tollgate }) => {
    const { prompt = '' } = await body(request)
    const reply = await tollgate.run(async ({ model, report }) => {
      const result = await complete(model, prompt)
      report({ inputTokens: result.inputTokens, outputTokens: result.outputTokens })
      return result.text
    })
    return Response.json({ model: tollgate.model, reply })
  },
  {
    gate,
    identify: async (request) => {
      await ready // the demo key (DEMO_API_KEY), once stored
      return byKey(request)
    },
    feature: 'chat',
    model: async (request) => (await body(request)).model ?? 'gpt-4o-mini',
    estimate: async (request) => {
      const { prompt = '', max_tokens = 512 } = await body(request)
      return { inputTokens: prompt.length, maxOutputTokens: max_tokens }
    },
  },
)
