/**
 * Conformance: any string is a key of its own. Keys, reservation ids and block markers that
 * differ in any UTF-16 code unit must never share state, whatever the store does to encode them.
 */
import { describe, expect, it } from 'vitest'
import type { CounterSpec, Store } from '../../store/contract.js'
import {
  bucket,
  closed,
  counter,
  day,
  harness,
  lease,
  minute,
  read,
  reserve,
  reserveOk,
  type Suite,
  settle,
  sliding,
} from './specs.js'

/** Strings that trip up key encodings: separators, escapes, Unicode forms, lone surrogates, sizes. */
export const HOSTILE_STRINGS: readonly string[] = [
  '',
  ' ',
  'a',
  'A',
  'a:b',
  'a:b:',
  ':a:b',
  'a::b',
  '{a}',
  '{a}:b',
  'a}{b',
  '{}',
  'a\nb',
  'a\r\nb',
  'a\tb',
  'a\0b',
  'a%b',
  '%',
  'a%3Ab',
  'a%253Ab',
  'a%0040b',
  'a@0',
  'a@1767571200000',
  'a#throttle',
  'a|b',
  'a=b,c=d',
  '*',
  '?',
  '[a]',
  '"a"',
  "'a'",
  'a\\b',
  '../a',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'ü',
  'u\u0308',
  'ß',
  'SS',
  'İ',
  '🚦', // '\uD83D\uDEA6'
  '\uD83D',
  '\uDEA6',
  '\uDEA6\uD83D',
  '\uD800',
  '\uDBFF',
  '\uFFFD',
  '\uFEFFa',
  'x'.repeat(10_000),
  `${'x'.repeat(10_000)}y`,
  `${'x'.repeat(9_999)}\uD800`,
]

async function expectIsolated(store: Store, specs: CounterSpec[]): Promise<void> {
  const states = await read(store, specs)
  const wrong = specs.flatMap((spec, i) =>
    states[i]!.used === spec.amount
      ? []
      : [{ key: JSON.stringify(spec.key).slice(0, 80), want: spec.amount, got: states[i]!.used }],
  )
  expect(wrong).toEqual([])
}

export function describeKeys(suite: Suite): void {
  describe('hostile keys, ids and markers', () => {
    it('keys differing in any code unit are distinct counters', async () => {
      const { store, clock, key, id } = await harness(suite)
      const scope = key('hostile')
      const keys = [...HOSTILE_STRINGS, ...HOSTILE_STRINGS.map((s) => `${scope}:${s}`)]
      expect(new Set(keys).size).toBe(keys.length)
      const specs = keys.map((k, i) => counter(k, day(clock.now()), 1_000_000, i + 1))
      for (const spec of specs) await reserveOk(store, id(), [spec])
      await expectIsolated(store, specs)
      // One reserve over all of them at once holds on each exactly once.
      await reserveOk(store, id(), specs)
      await expectIsolated(
        store,
        specs.map((s) => ({ ...s, amount: 2 * s.amount })),
      )
    })

    it('one key under different scopes (tenants) is as many counters', async () => {
      // the same user id in two tenants: two users, never one counter
      const { store, clock, key, id } = await harness(suite)
      const k = key('scoped')
      const scopes = [undefined, 'a', 'b', 'a:b', '{a}', 'é\u0000']
      const specs = scopes.map((scope, i) =>
        counter(k, day(clock.now()), 1_000_000, i + 1, scope === undefined ? {} : { scope }),
      )
      for (const spec of specs) await reserveOk(store, id(), [spec])
      for (const spec of specs)
        expect((await read(store, [spec]))[0]!.used, String(spec.scope)).toBe(spec.amount)
    })

    it('keys that look like another window kind of another key stay separate', async () => {
      const { store, clock, key, id } = await harness(suite)
      const now = clock.now()
      const base = key('base')
      const window = minute(now)
      const start = window.bounds[1]!
      const specs = [
        counter(base, window, 100, 1, { throttle: { at: 0, limit: 1_000, periodMs: 60_000 } }),
        counter(`${base}@${start}`, sliding(60_000, 1_000), 100, 2),
        counter(`${base}@${start}`, window, 100, 3),
        counter(`${base}#throttle`, bucket(1_000), 100, 4),
        counter(`${base}@bucket`, bucket(1_000), 100, 5),
        counter(`${base}@lease`, lease(60_000), 100, 6),
        counter(`${base}@sliding`, sliding(60_000, 1_000), 100, 7),
        counter(`s|${base}`, sliding(60_000, 1_000), 100, 8),
        counter(`b|${base}`, bucket(1_000), 100, 9),
      ]
      for (const spec of specs) await reserveOk(store, id(), [spec])
      await expectIsolated(store, specs)
    })

    it('a key reused under another window kind (a policy edit) still answers', async () => {
      const { store, clock, key, id } = await harness(suite)
      const k = key()
      const windows = [
        bucket(1_000),
        sliding(60_000, 1_000),
        lease(60_000),
        minute(clock.now()),
        bucket(1_000),
      ]
      for (const window of windows) {
        const spec = counter(k, window, 100, 1)
        expect(['ok', 'denied']).toContain((await reserve(store, id(), [spec])).status)
        expect(await read(store, [spec])).toHaveLength(1)
      }
    })

    it('overrides are per key', async () => {
      const { store, clock } = await harness(suite)
      const keys = HOSTILE_STRINGS
      for (let i = 0; i < keys.length; i++) await store.setOverride(keys[i]!, 1_000 + i)
      const states = await read(
        store,
        keys.map((k) => counter(k, day(clock.now()), 1, 0)),
      )
      expect(states.map((s) => s.cap)).toEqual(keys.map((_, i) => 1_000 + i))
    })

    it('block markers are per string', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), day(clock.now()), 1_000_000, 1)
      for (let i = 0; i < HOSTILE_STRINGS.length; i += 2) await store.block(HOSTILE_STRINGS[i]!, `code-${i}`)
      for (let i = 0; i < HOSTILE_STRINGS.length; i++) {
        const answer = await reserve(store, id(), [spec], { blocks: [HOSTILE_STRINGS[i]!] })
        if (i % 2 === 0) expect(answer).toMatchObject({ status: 'blocked', code: `code-${i}` })
        else expect(answer.status, `marker ${JSON.stringify(HOSTILE_STRINGS[i]).slice(0, 40)}`).toBe('ok')
      }
    })

    it('reservation ids differing in any code unit are distinct reservations', async () => {
      const { store, clock, key } = await harness(suite)
      const ids = HOSTILE_STRINGS
      const specs = ids.map(() => counter(key(), day(clock.now()), 1_000_000, 100))
      for (let i = 0; i < ids.length; i++) {
        await reserveOk(store, ids[i]!, [specs[i]!], { meta: { model: `model-${i}` } })
      }
      for (let i = 0; i < ids.length; i++) {
        expect(await store.lookup(ids[i]!)).toMatchObject({
          id: ids[i],
          state: 'held',
          meta: { model: `model-${i}` },
        })
      }
      for (let i = 0; i < ids.length; i++) closed(await settle(store, ids[i]!, { tokens: i }), 'settled')
      const states = await read(store, specs)
      expect(states.map((s) => [s.used, s.held])).toEqual(ids.map((_, i) => [i, 0]))
    })
  })
}
