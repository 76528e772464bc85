import type { TollgateHandle } from '@tollgate/web'
import type { NextRequest } from 'next/server.js'
import { expectTypeOf, test } from 'vitest'
import { type NextTollgateOptions, type RouteContext, withTollgate } from './index.js'

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
