import type { Tollgate } from '@tollgate/core'
import type { TollgateHandle, UsageHandlerOptions } from '@tollgate/web'
import { type Context, Hono } from 'hono'
import { expectTypeOf, test } from 'vitest'
import { type HonoTollgateOptions, type TollgateEnv, tollgate, usageRoute } from './index.js'

test("c.get('tollgate') is typed through the app's Variables", () => {
  const app = new Hono<TollgateEnv>()
  app.post('/', tollgate({} as HonoTollgateOptions), (c) => {
    expectTypeOf(c.get('tollgate')).toEqualTypeOf<TollgateHandle>()
    return c.text('ok')
  })
  expectTypeOf<NonNullable<HonoTollgateOptions['meter']>>().parameter(0).toEqualTypeOf<Context>()
})

test('usageRoute is a Hono handler for any app', () => {
  const usage = usageRoute({} as Tollgate, {} as UsageHandlerOptions)
  new Hono<TollgateEnv>().get('/usage', usage)
  new Hono().get('/usage', usage)
})
