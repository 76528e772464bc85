import type { Tollgate } from '@tollgate/core'
import type { TollgateHandle, UsageHandlerOptions } from '@tollgate/web'
import type { NextRequest } from 'next/server.js'
import { expectTypeOf, test } from 'vitest'
import { type NextTollgateOptions, type RouteContext, usageRoute, withTollgate } from './index.js'

test('the handler gets the request and the route context plus tollgate', () => {
  const POST = withTollgate<NextRequest, RouteContext<{ slug: string }>>((request, context) => {
    expectTypeOf(request).toEqualTypeOf<NextRequest>()
    expectTypeOf(context.params).toEqualTypeOf<Promise<{ slug: string }>>()
    expectTypeOf(context.tollgate).toEqualTypeOf<TollgateHandle>()
    return new Response('ok')
  }, {} as NextTollgateOptions)
  expectTypeOf(POST).parameters.toEqualTypeOf<[NextRequest, RouteContext<{ slug: string }>]>()
  expectTypeOf(POST).returns.toEqualTypeOf<Promise<Response>>()
})

test('usageRoute is a GET route handler of the request', () => {
  const GET = usageRoute({} as Tollgate, {} as UsageHandlerOptions)
  expectTypeOf(GET).parameters.toEqualTypeOf<[NextRequest]>()
  expectTypeOf(GET).returns.toEqualTypeOf<Promise<Response>>()
})
