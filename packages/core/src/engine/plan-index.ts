/**
 * The hot path's look-up of known plans: one Map keyed by one id of the subject, then a
 * comparison of the request's parts. The plans' trie (`plan.ts`) takes a step per model, feature
 * and id, each a node of its own and often a Map of its own: in the memory headline that walk,
 * scattered in memory, cost about a sixth of a reserve+settle, where this index costs one look-up.
 * The trie stays the plans' home: this index only remembers what the trie found.
 */
import type { Subject } from '../decision.js'

/**
 * What the index writes on each plan it keeps: the request's parts the plan was found for, in the
 * subject's own order. Fields of the plan itself, not of an entry beside it: a user's plan is
 * rarely in the processor's cache, and an entry was one more object a look-up waited for. The
 * first three ids are also fields, which is what a look-up reads for most subjects (user, team,
 * org): reading them through the list, a second object rarely in the cache, cost 2–8% of an
 * in-memory reserve+settle (five A/B runs of builds, 2026-12-07). Written by {@link PlanIndex.add}
 * only; a plan found in the trie has one set of parts, so it is kept at most once.
 */
export interface Indexed {
  model: string | undefined
  feature: string | undefined
  /** Shared by the plans with the same dimensions (see `dimensionsAlike`). */
  dimensions: string[]
  ids: string[]
  id0: string | undefined
  id1: string | undefined
  id2: string | undefined
  /** `ids.length`, read without fetching the list. */
  n: number
}

/** Id `i` of `plan`: the first three from its fields. */
function idOf(plan: Indexed, i: number): string | undefined {
  return i === 0 ? plan.id0 : i === 1 ? plan.id1 : i === 2 ? plan.id2 : plan.ids[i]
}

/** Most plans kept under one id (past it, the trie answers for that id's other shapes). */
const PER_ID = 8
/** Distinct ids counted per dimension to choose the key (see {@link PlanIndex.learn}). */
const COUNTED = 4_096

export class PlanIndex<P extends Indexed> {
  /** Plans by their key id: the plan itself while it is the only one (most ids), else a list. */
  private byId = new Map<string, P | P[]>()
  private kept = 0
  /** The dimension whose id keys the index: the one with the most distinct ids among plans made. */
  private key: string | undefined = undefined
  private readonly distinct = new Map<string, Set<string>>()
  /**
   * The subject as last read by {@link read}: its dimensions and ids in order. Each id is read
   * once per request, here; a miss walks the trie from these, not from the subject again.
   */
  readonly dimensions: string[] = []
  readonly ids: unknown[] = []
  length = 0

  constructor(private readonly max: number) {}

  /** Read `subject`'s dimensions and ids once, into {@link dimensions} and {@link ids}. */
  read(subject: Subject): void {
    const { dimensions, ids } = this
    let n = 0
    for (const dimension in subject) {
      dimensions[n] = dimension
      ids[n] = subject[dimension]
      n++
    }
    this.length = n
  }

  /**
   * The plan for a request with these parts, when this index has it. The key id picks the
   * candidates; each candidate is then compared with every id, each read once in that pass (a
   * candidate found is one whose ids are all the ones read there).
   */
  find(model: string | undefined, feature: string | undefined, subject: Subject): P | undefined {
    const { key } = this
    if (key === undefined) return undefined
    const id = subject[key]
    if (typeof id !== 'string') return undefined
    const listed = this.byId.get(id)
    if (listed === undefined) return undefined
    // one candidate in the common case; with several, the ids are read into the scratch first
    if (!Array.isArray(listed)) {
      const plan: P = listed
      if (plan.model !== model || plan.feature !== feature) return undefined
      const { dimensions } = plan
      let i = 0
      for (const dimension in subject) {
        if (dimensions[i] !== dimension) return undefined
        const id = subject[dimension]
        // `idOf`, written out: the hot path's compiled code has no inlining budget left for it, and
        // a call per id cost as much as the list read it saves (A/B of builds, 2026-12-07)
        if ((i === 0 ? plan.id0 : i === 1 ? plan.id1 : i === 2 ? plan.id2 : plan.ids[i]) !== id)
          return undefined
        i++
      }
      return i === plan.n ? plan : undefined
    }
    this.read(subject)
    return this.found(listed, model, feature)
  }

  /** The plan of `list` for the request last {@link read}. */
  private found(list: P[], model: string | undefined, feature: string | undefined): P | undefined {
    const { dimensions, ids, length } = this
    search: for (let e = 0; e < list.length; e++) {
      const plan = list[e]!
      if (plan.model !== model || plan.feature !== feature || plan.n !== length) continue
      for (let i = 0; i < length; i++)
        if (idOf(plan, i) !== ids[i] || plan.dimensions[i] !== dimensions[i]) continue search
      return plan
    }
    return undefined
  }

  /** Remember `plan` (found in the trie) for the request last {@link read}. */
  add(model: string | undefined, feature: string | undefined, plan: P): void {
    const { key, length } = this
    if (key === undefined) return
    const at = this.dimensions.indexOf(key)
    if (at < 0 || at >= length) return
    const id = this.ids[at] as string // the trie found a plan: every id is a string it was made with
    const listed = this.byId.get(id)
    if (Array.isArray(listed) && listed.length >= PER_ID) return
    const ids = this.ids as string[]
    plan.model = model
    plan.feature = feature
    plan.dimensions = this.dimensionsAlike()
    plan.ids = ids.slice(0, length)
    plan.id0 = length > 0 ? ids[0] : undefined
    plan.id1 = length > 1 ? ids[1] : undefined
    plan.id2 = length > 2 ? ids[2] : undefined
    plan.n = length
    if (listed === undefined) {
      if (this.kept >= this.max) this.clear()
      this.byId.set(id, plan)
    } else if (Array.isArray(listed)) listed.push(plan)
    else this.byId.set(id, [listed, plan])
    this.kept++
  }

  /**
   * The dimensions last {@link read}, as a list shared with the plan kept before when it has the
   * same ones: most do (every user's plan names `org`, `team`, `user`), and thousands of plans are
   * kept at once. The index never changes these lists.
   */
  private dimensionsAlike(): string[] {
    const { dimensions, length } = this
    const last = this.lastDimensions
    if (last.length === length) {
      let i = 0
      while (i < length && last[i] === dimensions[i]) i++
      if (i === length) return last
    }
    this.lastDimensions = dimensions.slice(0, length)
    return this.lastDimensions
  }
  private lastDimensions: string[] = []

  /**
   * Count a new plan's ids, and key the index by the dimension with the most distinct ids so far
   * (starting over when that changes): a user id picks out a plan among few, an org id among many.
   */
  learn(subject: Subject): void {
    let best = this.key === undefined ? 0 : (this.distinct.get(this.key)?.size ?? 0)
    let key = this.key
    for (const dimension in subject) {
      let seen = this.distinct.get(dimension)
      if (seen === undefined) {
        seen = new Set()
        this.distinct.set(dimension, seen)
      }
      if (seen.size < COUNTED) seen.add(subject[dimension]!)
      if (seen.size > best) {
        best = seen.size
        key = dimension
      }
    }
    if (key !== this.key) {
      this.key = key
      this.clear()
    }
  }

  /** Forget every plan kept (the trie started over, or the key changed). */
  clear(): void {
    this.byId = new Map()
    this.kept = 0
  }

  /** Let go of the last request's ids when it had many (a hostile subject): the arrays only grow. */
  release(): void {
    if (this.dimensions.length > 64) {
      this.dimensions.length = 0
      this.ids.length = 0
    }
  }
}
