import type { Tollgate } from '@tollgate/core'
import type { TollgateHandle, UsageHandlerOptions } from '@tollgate/web'
import type { Request, RequestHandler } from 'express'
import { expectTypeOf, test } from 'vitest'
import { type ExpressTollgateOptions, tollgate, usageRoute } from './index.js'

test('req.tollgate is the handle; value functions receive Express requests', () => {
  expectTypeOf<Request['tollgate']>().toEqualTypeOf<TollgateHandle | undefined>()
  expectTypeOf(tollgate).returns.toEqualTypeOf<RequestHandler>()
  expectTypeOf<NonNullable<ExpressTollgateOptions['meter']>>().parameter(0).toEqualTypeOf<Request>()
})

test('usageRoute is an Express handler', () => {
  expectTypeOf(usageRoute({} as Tollgate, {} as UsageHandlerOptions)).toEqualTypeOf<RequestHandler>()
})
