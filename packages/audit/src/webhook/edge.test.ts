/**
 * `@tollgate/audit/webhook` must run on edge runtimes: nothing it loads may import a Node
 * built-in or touch `process`. Follows every relative import from its entry file.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

it('loads no Node built-in and never touches process', () => {
  const seen = new Set<string>()
  const visit = (url: URL) => {
    const path = fileURLToPath(url)
    if (seen.has(path)) return
    seen.add(path)
    const source = readFileSync(path, 'utf8').replace(/\/\*[\s\S]*?\*\/|^\s*\/\/.*$/gm, '')
    const imports = [...source.matchAll(/(?:import|export)[^'"]*?from\s+'([^']+)'/g)].map((m) => m[1]!)
    for (const specifier of imports) {
      expect(specifier, `${path} imports ${specifier}`).not.toMatch(/^node:|^(fs|http|crypto|stream)$/)
      if (specifier.startsWith('.')) visit(new URL(specifier.replace(/\.js$/, '.ts'), url))
    }
    expect(source, `${path} uses process`).not.toMatch(/\bprocess\./)
  }
  visit(new URL('./index.ts', import.meta.url))
  expect(seen.size).toBeGreaterThanOrEqual(5)
})
