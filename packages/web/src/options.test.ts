import { describe, expect, it } from 'vitest'
import { headerIdentity } from './identity/header.js'
import { checkTollgateOptions } from './options.js'
import { gateFetch } from './stream.js'
import { testGate } from './test/fixtures.js'
import { usageHandler } from './usage.js'

const identify = headerIdentity({ trusted: true, headers: { user: 'x-user' } })

describe('adapter options', () => {
  it('are checked when the middleware is made, naming the option (not on every request)', () => {
    const { gate } = testGate()
    const bad: [string, Record<string, unknown>][] = [
      ['gate', { gate: undefined }],
      ['gate', { gate: {} }],
      ['identify', { identify: undefined }],
      ['identify', { identify: 'api-key' }],
      ['model', { model: 5 }],
      ['feature', { feature: null }],
      ['estimate', { estimate: 'small' }],
      ['meter', { meter: {} }],
      ['onSettle', { onSettle: true }],
      ['onError', { onError: 'log' }],
      ['headers', { headers: 'none' }],
      ['headers.openai', { headers: { openai: 'no' } }],
    ]
    for (const [name, extra] of bad) {
      const options = { gate, identify, ...extra } as never
      expect(() => checkTollgateOptions('tollgate', options), name).toThrow(
        new RegExp(`^tollgate: ${name.replace('.', '\\.')} must be`),
      )
      expect(() => gateFetch(() => new Response('ok'), options), name).toThrow(/^gateFetch: /)
    }
    expect(() => checkTollgateOptions('tollgate', null as never)).toThrow(/options must be an object/)
    for (const good of [{}, { model: 'm', feature: (r: Request) => r.url, estimate: {}, headers: false }])
      expect(() => checkTollgateOptions('tollgate', { gate, identify, ...good } as never)).not.toThrow()
  })

  it('the usage endpoint checks its gate and identify too', () => {
    const { gate } = testGate()
    expect(() => usageHandler({} as never, { identify })).toThrow(/^usageHandler: gate must be a gate/)
    expect(() => usageHandler(gate, {} as never)).toThrow(/^usageHandler: identify must be a function/)
  })
})
