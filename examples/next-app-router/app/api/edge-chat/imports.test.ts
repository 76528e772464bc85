/**
 * The Edge route's whole import graph, through the workspace packages' sources, reaches no Node.js
 * built-in module: Next.js refuses to bundle `node:*` (and ioredis) for the Edge runtime.
 * Checked twice: by reading the imports of our own sources (type-only imports vanish from the
 * bundle), and by bundling the route with esbuild for a worker platform, third-party modules
 * included, where a Node built-in cannot resolve.
 */
import { readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../..')
const workspace: Record<string, string> = {
  '@tollgate/core': 'packages/core/src/index.ts',
  '@tollgate/web': 'packages/web/src/index.ts',
  '@tollgate/next': 'packages/next/src/index.ts',
  '@tollgate/http': 'packages/http/src/index.ts',
}
const IMPORT =
  /(?:^|[\n;])\s*(?:import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g

function resolveLocal(from: string, specifier: string): string {
  const base = resolve(dirname(from), specifier.replace(/\.js$/, ''))
  for (const candidate of [`${base}.ts`, `${base}/index.ts`]) {
    try {
      readFileSync(candidate)
      return candidate
    } catch {}
  }
  throw new Error(`cannot resolve ${specifier} from ${from}`)
}

/** Every file reached from `entry`, and every bare module it imports (with the importing file). */
function graph(entry: string) {
  const seen = new Set<string>()
  const external: { module: string; from: string }[] = []
  const visit = (file: string) => {
    if (seen.has(file)) return
    seen.add(file)
    for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      if (match[1]) continue // import type / export type
      const specifier = (match[2] ?? match[3])!
      if (specifier.startsWith('.')) visit(resolveLocal(file, specifier))
      else if (workspace[specifier]) visit(resolve(root, workspace[specifier]))
      else external.push({ module: specifier, from: file.slice(root.length + 1) })
    }
  }
  visit(entry)
  return { files: [...seen], external }
}

describe('the Edge route imports', () => {
  it('no Node.js built-in, anywhere in @tollgate/next, /web, /core and /http', () => {
    const { files, external } = graph(resolve(root, 'examples/next-app-router/app/api/edge-chat/route.ts'))
    expect(files.some((f) => f.includes('packages/http/src/client.ts'))).toBe(true)
    expect(files.some((f) => f.includes('packages/core/src/engine'))).toBe(true)
    const builtins = new Set(builtinModules)
    const nodeOnly = external.filter(
      ({ module }) => module.startsWith('node:') || builtins.has(module.split('/')[0]!),
    )
    expect(nodeOnly).toEqual([])
    expect(external.filter(({ module }) => module === 'ioredis')).toEqual([])
  })
  it('bundles for a worker platform (edge-light, worker and browser conditions), jose and zod included', async () => {
    const result = await build({
      entryPoints: [resolve(root, 'examples/next-app-router/app/api/edge-chat/route.ts')],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      conditions: ['edge-light', 'worker', 'browser', 'import'],
      tsconfig: resolve(root, 'tsconfig.json'),
      metafile: true,
      logLevel: 'silent',
    })
    expect(result.errors).toEqual([])
    const inputs = Object.keys(result.metafile.inputs)
    expect(inputs.some((i) => i.includes('packages/http/src/client.ts'))).toBe(true)
    expect(inputs.some((i) => i.includes('node_modules') && i.includes('jose'))).toBe(true)
  })
})
