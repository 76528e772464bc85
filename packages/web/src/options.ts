/**
 * The adapters' options, checked once when the middleware (or route wrapper) is made. Without it a
 * missing `identify` or a `gate` that is no gate failed every request instead (503s or 500s), far
 * from the line that caused it.
 */
import type { Tollgate } from '@tollgate/core'
import type { TollgateOptions } from './request.js'

const FUNCTIONS = ['meter', 'onSettle', 'onError'] as const
const VALUES = { model: 'string', feature: 'string', estimate: 'object' } as const

/** Throws a `TypeError` naming `who` and the gate when `gate` is not a gate. */
export function checkGate(who: string, gate: unknown): asserts gate is Tollgate {
  if (typeof (gate as Partial<Tollgate> | null)?.reserve !== 'function')
    throw new TypeError(`${who}: gate must be a gate (createTollgate(…)), got ${kind(gate)}`)
}

/**
 * Throws a `TypeError` naming `who` (`tollgate`, `withTollgate`, `gateFetch`) and the first option
 * that cannot work.
 *
 * @example checkTollgateOptions('myAdapter', options)
 */
export function checkTollgateOptions(who: string, options: TollgateOptions<never>): void {
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`${who}: options must be an object`)
  checkGate(who, options.gate)
  if (typeof options.identify !== 'function')
    throw new TypeError(
      `${who}: identify must be a function (apiKeyIdentity, signedIdentity, headerIdentity or your own), got ${kind(options.identify)}`,
    )
  for (const [name, type] of Object.entries(VALUES)) {
    const value = (options as unknown as Record<string, unknown>)[name]
    if (value !== undefined && typeof value !== 'function' && (typeof value !== type || value === null))
      throw new TypeError(
        `${who}: ${name} must be a ${type} or a function of the request, got ${kind(value)}`,
      )
  }
  for (const name of FUNCTIONS)
    if (options[name] !== undefined && typeof options[name] !== 'function')
      throw new TypeError(`${who}: ${name} must be a function, got ${kind(options[name])}`)
  const { headers } = options
  if (headers !== undefined && headers !== false) {
    if (typeof headers !== 'object' || headers === null)
      throw new TypeError(`${who}: headers must be false or { ietf, openai }, got ${kind(headers)}`)
    for (const family of ['ietf', 'openai'] as const)
      if (headers[family] !== undefined && typeof headers[family] !== 'boolean')
        throw new TypeError(`${who}: headers.${family} must be true or false, got ${kind(headers[family])}`)
  }
}

function kind(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 40))
  return typeof value
}
