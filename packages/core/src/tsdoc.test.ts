/**
 * The `@example`s of core's documentation comments call only functions that exist: exports of the
 * Tollgate packages, globals, a few named libraries, or what the example itself declares. An example
 * that names a function nobody exports (`estimateOpenAI`, `refusedCleanly`) cannot be copied.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const src = new URL('./', import.meta.url)

/** The packages whose exports examples may call, and names from elsewhere, with where they come from. */
const PACKAGES = [
  '@tollgate/core',
  '@tollgate/core/testing',
  '@tollgate/llm',
  '@tollgate/redis',
  '@tollgate/web',
  '@tollgate/audit',
  '@tollgate/audit/webhook',
  '@tollgate/http',
]
const ELSEWHERE: Record<string, string> = {
  Redis: 'ioredis',
  expect: 'vitest',
  readFileSync: 'node:fs',
}
const KEYWORDS = new Set([
  'if',
  'for',
  'while',
  'switch',
  'catch',
  'function',
  'return',
  'typeof',
  'await',
  'async',
])

/** Every `@example` of the documentation comments of core's sources (tests left out), with its file. */
function examples(): { file: string; text: string }[] {
  const files = (readdirSync(src, { recursive: true }) as string[]).filter(
    (file) => file.endsWith('.ts') && !/\.test(-d)?\.ts$|\.property\.test\.ts$/.test(file),
  )
  return files.flatMap((file) =>
    [...readFileSync(new URL(file, src), 'utf8').matchAll(/\/\*\*([\s\S]*?)\*\//g)].flatMap(([, comment]) => {
      const text = comment!.replace(/^[ \t]*\* ?/gm, '')
      return [...text.matchAll(/@example([\s\S]*?)(?=\n@\w|$)/g)].map(([, example]) => ({
        file,
        text: example!,
      }))
    }),
  )
}

/** The functions an example calls (not methods), less what it declares itself. */
function called(example: string): string[] {
  const code = example.replace(/\/\/.*$/gm, '').replace(/'[^'\n]*'|`[^`]*`|"[^"\n]*"/g, "''")
  const declared = new Set(
    [...code.matchAll(/\b(?:const|let|var|function|class)\s+([A-Za-z_$][\w$]*)/g)].map(([, name]) => name),
  )
  return [...code.matchAll(/(?<![\w$.])([A-Za-z_$][\w$]*)\s*\(/g)]
    .map(([, name]) => name!)
    .filter((name) => !KEYWORDS.has(name) && !declared.has(name))
}

describe('the TSDoc examples of core', () => {
  it('call only functions that exist', { timeout: 60_000 }, async () => {
    const known = new Set<string>([...Object.getOwnPropertyNames(globalThis), ...Object.keys(ELSEWHERE)])
    for (const name of PACKAGES) for (const key of Object.keys(await import(name))) known.add(key)
    const found = examples()
    expect(found.length).toBeGreaterThan(20)
    const unknown = found.flatMap(({ file, text }) =>
      called(text)
        .filter((name) => !known.has(name))
        .map((name) => `${file}: ${name}(`),
    )
    expect(unknown).toEqual([])
  })

  it('finds what an example calls, and not what it declares or calls on an object', () => {
    expect(called("const a = f(x); a.g(1); new Thing(2) // h(3)\nconst s = 'i(4)'")).toEqual(['f', 'Thing'])
    expect(called('const estimate = estimateOpenAI(body).inputTokens')).toEqual(['estimateOpenAI'])
  })
})
