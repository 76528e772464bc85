/**
 * `require('@tollgate/core/testing')` loads (vitest throws when it is required, and the ES module
 * entry imports it): the CommonJS build, made with the package's own tsup config, loads without
 * vitest and fast-check, its helpers work, and the two that need vitest say so when called.
 */
import { execFile } from 'node:child_process'
import { rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import * as cjs from './require.js'

const run = promisify(execFile)
const core = fileURLToPath(new URL('../../', import.meta.url))
const tsup = join(dirname(createRequire(import.meta.url).resolve('tsup')), 'cli-default.js')

describe('@tollgate/core/testing under require()', () => {
  it('loads from the CommonJS build, without vitest', { timeout: 60_000 }, async () => {
    // inside the package, so that the build finds its dependencies as the published one does
    const out = join('node_modules', '.cache', `tollgate-cjs-${process.pid}`)
    try {
      await run(process.execPath, [tsup, '--format', 'cjs', '--no-dts', '--no-sourcemap', '--out-dir', out], {
        cwd: core,
      })
      const script = `
        const testing = require(${JSON.stringify(join(core, out, 'testing', 'index.cjs'))})
        const clock = testing.fakeClock()
        clock.advance('61s')
        let refused
        try { testing.describeStoreConformance('store', () => null) } catch (error) { refused = error.message }
        console.log(JSON.stringify({ keys: Object.keys(testing).sort(), advanced: clock.now() > 0, refused }))`
      const { stdout } = await run(process.execPath, ['-e', script], { cwd: core })
      const answer = JSON.parse(stdout) as { keys: string[]; advanced: boolean; refused: string }
      expect(answer.keys).toEqual(Object.keys(cjs).sort())
      expect(answer.advanced).toBe(true)
      expect(answer.refused).toMatch(
        /describeStoreConformance .* needs vitest, which cannot be loaded with require\(\)/,
      )
    } finally {
      rmSync(join(core, out), { recursive: true, force: true })
    }
  })

  it('works but for the two helpers built on vitest, which throw saying to import it as an ES module', () => {
    const clock = cjs.fakeClock(1_000)
    clock.advance('1s')
    expect(clock.now()).toBe(2_000)
    expect(cjs.replaceAt({ a: [1, 2] }, [0, 1], 'x')).toEqual({ a: [1, 'x'] })
    expect(cjs.parseSfList('"default";q=100;w=60')).toEqual([{ name: 'default', params: { q: 100, w: 60 } }])
    expect(() => cjs.describeStoreConformance('store', () => null as never)).toThrow(
      /import '@tollgate\/core\/testing' from an ES module/,
    )
    expect(() => cjs.checkRateLimitHeaders(new Headers())).toThrow(/checkRateLimitHeaders .* needs vitest/)
  })
})
