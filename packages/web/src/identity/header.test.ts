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

  it('trims ids; an id of only whitespace (NBSP included, which Headers keeps) is a 401', async () => {
    // a header's byte 0xA0 reaches Node as U+00A0, which Headers does not strip but trim() does
    const identify = headerIdentity({ trusted: true, headers: { tenant: 'x-tenant-id' } })
    const request = (tenant: string) => new Request('http://x/', { headers: { 'x-tenant-id': tenant } })
    expect(request('\u00a0').headers.get('x-tenant-id')).toBe('\u00a0')
    for (const blank of ['\u00a0', '\u00a0\u00a0', ' \u00a0\t', '\u00a0 \u00a0'])
      expect(await identify(request(blank)), JSON.stringify(blank)).toEqual({
        ok: false,
        code: 'unauthenticated',
        status: 401,
        message: 'Missing identity header "x-tenant-id".',
      })
    for (const padded of ['acme', ' acme ', '\u00a0acme\u00a0', '\tacme\u00a0 '])
      expect(await identify(request(padded)), JSON.stringify(padded)).toEqual({
        ok: true,
        subject: { tenant: 'acme' },
        attributes: {},
      })
    // an id with whitespace inside keeps it
    expect(await identify(request(' a\u00a0b '))).toMatchObject({ subject: { tenant: 'a\u00a0b' } })
  })
})
