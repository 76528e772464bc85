/**
 * Top self-time functions of a V8 CPU profile, located in the original sources.
 * tsx strips whitespace from what it runs, so raw profile positions all read line 1;
 * with `--enable-source-maps` Node keeps each module's source map, and
 * `findSourceMap` turns a function's position back into `file:line`.
 */
import type { Profiler, Runtime } from 'node:inspector'
import { findSourceMap } from 'node:module'
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface HotSpot {
  selfMs: number
  selfPct: number
  fn: string
  /** `file:line` of the function, relative to the working directory. */
  where: string
  /** The caller this function spent most of its self time under (for a dependency, the project function that called into it). */
  caller: string
}

function locate(frame: Runtime.CallFrame): { fn: string; where: string } {
  const fn = frame.functionName || '(anonymous)'
  if (!frame.url) return { fn, where: '' }
  const entry = findSourceMap(frame.url)?.findEntry(frame.lineNumber, frame.columnNumber)
  const mapped = entry && 'originalSource' in entry
  const source = mapped ? entry.originalSource : frame.url
  const line = (mapped ? entry.originalLine : frame.lineNumber) + 1
  const path = source.startsWith('file:') ? relative(process.cwd(), fileURLToPath(source)) : source
  return { fn, where: `${path}:${line}` }
}

/** Outside the project: a dependency, Node itself, or native code. */
const external = (where: string) =>
  where === '' || where.startsWith('node:') || where.includes('node_modules')

/** The `top` functions by self time, merging every call-tree node of the same function. */
export function hotSpots(profile: Profiler.Profile, top = 15): HotSpot[] {
  const selfUs = new Map<number, number>()
  const samples = profile.samples ?? []
  samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas?.[i] ?? 0))
  })
  const parentOf = new Map<number, Profiler.ProfileNode>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node)
  const label = ({ fn, where }: { fn: string; where: string }) => (where ? `${fn} ${where}` : fn)

  const spots = new Map<string, { fn: string; where: string; us: number; callers: Map<string, number> }>()
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0
    if (us === 0) continue
    const at = locate(node.callFrame)
    const key = label(at)
    const spot = spots.get(key) ?? { ...at, us: 0, callers: new Map<string, number>() }
    spot.us += us
    // inside a dependency, name the project function that called into it
    let parent = parentOf.get(node.id)
    while (parent && external(at.where) && external(locate(parent.callFrame).where))
      parent = parentOf.get(parent.id)
    const caller = parent ? label(locate(parent.callFrame)) : '(root)'
    spot.callers.set(caller, (spot.callers.get(caller) ?? 0) + us)
    spots.set(key, spot)
  }
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0)
  return [...spots.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((s) => ({
      selfMs: s.us / 1000,
      selfPct: (100 * s.us) / totalUs,
      fn: s.fn,
      where: s.where,
      caller: [...s.callers.entries()].sort((a, b) => b[1] - a[1])[0]![0],
    }))
}

export function printHotSpots(spots: readonly HotSpot[]): void {
  for (const s of spots)
    console.log(
      `${s.selfPct.toFixed(1).padStart(5)}%  ${s.selfMs.toFixed(0).padStart(6)} ms  ${s.fn}  ${s.where}\n` +
        `${' '.repeat(18)}← ${s.caller}`,
    )
}
