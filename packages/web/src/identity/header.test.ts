import { describe, expect, it } from 'vitest'
import { headerIdentity } from './header.js'

describe('headerIdentity', () => {
  it('refuses header names no request can carry, when it is made', () => {
    for (const header of ['', 'x user', 'x-user:'])
      for (const options of [
        { headers: { user: header } },
        { headers: { user: 'x-user' }, attributes: { plan: header } },
      ])
        expect(() => headerIdentity({ trusted: true, ...options }), header).toThrow(
          /^headerIdentity: .* must be a header name/,
        )
  })

  it('must be opted into with trusted: true', () => {
    expect(() => headerIdentity({ headers: { user: 'x-user-id' } } as never)).toThrow(/trusted: true/)
    expect(() => headerIdentity({ trusted: 'yes', headers: { user: 'x-user-id' } } as never)).toThrow(
      /trusted/,
    )
    expect(() => headerIdentity({ trusted: true, headers: {} })).toThrow(/at least one/)
  })

  it('reads the subject and attributes; a missing or empty header is a 401, never a shared bucket', async () => {
    const identify = headerIdentity({
      trusted: true,
      headers: { tenant: 'x-tenant-id', user: 'x-user-id' },
      attributes: { plan: 'x-plan' },
    })
    const request = (headers: Record<string, string>) => new Request('http://x/', { headers })
    expect(await identify(request({ 'x-tenant-id': 'acme', 'x-user-id': 'u1', 'x-plan': 'pro' }))).toEqual({
      ok: true,
      subject: { tenant: 'acme', user: 'u1' },
      attributes: { plan: 'pro' },
    })
    expect(await identify(request({ 'x-tenant-id': 'acme', 'x-user-id': 'u1' }))).toMatchObject({
      attributes: {},
    })
    expect(await identify(request({ 'x-tenant-id': 'acme' }))).toMatchObject({ ok: false, status: 401 })
    expect(await identify(request({ 'x-tenant-id': 'acme', 'x-user-id': '  ' }))).toMatchObject({ ok: false })
  })
})
