/**
 * `POST /api/edge-chat` on the Edge runtime: the same quotas as a Node route, with counters in a
 * store server reached over HTTP (`httpStore` from `@tollgate/http`) and identity from a JWT.
 * Neither the memory store (one per isolate) nor `@tollgate/redis` (TCP) works here.
 */

import { type RouteContext, withTollgate } from '@tollgate/next'
import { readJson } from '@tollgate/web'
import type { NextRequest } from 'next/server.js'
import { edgeGate, edgeIdentify } from '../../../lib/edge.js'
import { complete } from '../../../lib/model.js'

export const runtime = 'edge'

interface ChatBody {
  model?: string
  prompt?: string
  max_tokens?: number
}
const body = async (request: NextRequest) => ((await readJson(request)) ?? {}) as ChatBody

type Route = (request: NextRequest, context: RouteContext) => Promise<Response>
let route: Route | undefined

/** Wrapped on the first request, when the environment is there (not at build time). */
export function POST(request: NextRequest, context: RouteContext): Promise<Response> {
  route ??= withTollgate(
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
      gate: edgeGate(),
      identify: edgeIdentify(),
      feature: 'chat',
      model: async (request) => (await body(request)).model ?? 'gpt-4o-mini',
      estimate: async (request) => {
        const { prompt = '', max_tokens = 512 } = await body(request)
        return { inputTokens: prompt.length, maxOutputTokens: max_tokens }
      },
    },
  )
  return route(request, context)
}
