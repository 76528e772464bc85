import { describe, expectTypeOf, it } from 'vitest'

/** A module's exports as a plain object type (a `const` export is readonly in a namespace, a function is not). */
type Exports<M> = { -readonly [K in keyof M]: M[K] }

describe('the CommonJS entry of @tollgate/core/testing', () => {
  it('exports what the ES module entry exports, with the same types (the build gives both its types)', () => {
    expectTypeOf<Exports<typeof import('./require.js')>>().toEqualTypeOf<
      Exports<typeof import('./index.js')>
    >()
  })
})
