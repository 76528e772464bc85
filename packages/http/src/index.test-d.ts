import type { Store, StoreReserveResult } from '@tollgate/core'
import { expectTypeOf, test } from 'vitest'
import {
  type HttpStore,
  HttpStoreError,
  type HttpStoreErrorCode,
  httpStore,
  type NonceStore,
  storeHandler,
} from './index.js'
import { type NodeListener, toNodeListener } from './node.js'

test('httpStore is a Store whose calls answer with promises (now() may answer at once)', () => {
  const store = httpStore({ url: 'https://store.test', secret: 'x'.repeat(32) })
  expectTypeOf(store).toEqualTypeOf<HttpStore>()
  expectTypeOf(store).toExtend<Store>()
  expectTypeOf(store.reserve).returns.toEqualTypeOf<Promise<StoreReserveResult>>()
  expectTypeOf(store.now).returns.toEqualTypeOf<number | Promise<number>>()
  // @ts-expect-error a url is required
  httpStore({ secret: 'x'.repeat(32) })
})

test('storeHandler is Request → Promise<Response>, and mounts on node:http', () => {
  const handler = storeHandler({} as Store, { secret: ['a'.repeat(32), new Uint8Array(32)] })
  expectTypeOf(handler).toEqualTypeOf<(request: Request) => Promise<Response>>()
  expectTypeOf(toNodeListener(handler)).toEqualTypeOf<NodeListener>()
  expectTypeOf<NonceStore['claim']>().returns.toEqualTypeOf<boolean | Promise<boolean>>()
})

test('errors carry a code union', () => {
  const error = new HttpStoreError('timeout', 'late')
  expectTypeOf(error.code).toEqualTypeOf<HttpStoreErrorCode>()
  expectTypeOf(HttpStoreError.isInstance).guards.toEqualTypeOf<HttpStoreError>()
})
