/**
 * Input checks, before any counter moves: amounts are non-negative safe whole numbers
 * below an absurdity bound, subjects are flat maps of non-empty string ids.
 */
import type { Subject } from '../decision.js'
import { TollgateError } from '../errors.js'
import { BUILTIN_METRICS } from '../policy/compile.js'
import type { Estimate, ReserveRequest, Usage } from './types.js'

/** Largest amount accepted for one call in any unit (a trillion). */
export const MAX_AMOUNT = 1e12

/** Throws `invalid_amount` unless `value` is a whole number in [0, MAX_AMOUNT]. */
export function checkAmount(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_AMOUNT) {
    throw new TollgateError(
      'invalid_amount',
      `${path} must be a whole number from 0 to ${MAX_AMOUNT}, got ${typeof value === 'number' ? value : typeof value}`,
      { issues: [{ path: path.split('.'), message: 'not a whole number from 0 to 1e12' }] },
    )
  }
  return value
}

/**
 * Custom units read once and checked: a fresh object of the amounts (for…in: inherited keys too,
 * every key the amounts are built from), or `undefined`.
 */
function readUnits(units: unknown, path: string): Record<string, number> | undefined {
  if (units === undefined) return undefined
  if (typeof units !== 'object' || units === null || Array.isArray(units)) {
    throw new TollgateError('invalid_amount', `${path} must be an object of unit → amount`)
  }
  const out: Record<string, number> = {}
  for (const unit in units) {
    const value: unknown = (units as Record<string, unknown>)[unit]
    // a unit named like a builtin metric would replace its amount (requests: 0 would admit any number)
    if (BUILTIN.has(unit)) {
      throw new TollgateError(
        'invalid_amount',
        `${path}.${unit}: "${unit}" is a builtin metric, not a custom unit; give it with its own field`,
      )
    }
    // amounts are plain objects: such a unit would be read back as the object's own method
    if (unit in Object.prototype) {
      throw new TollgateError(
        'invalid_amount',
        `${path}.${unit}: "${unit}" cannot name a unit: every JavaScript object has a property of that name`,
      )
    }
    out[unit] = checkAmount(value, `${path}.${unit}`)
  }
  return out
}

const BUILTIN: ReadonlySet<string> = new Set(BUILTIN_METRICS)

/**
 * A reserve request as the engine uses it: each field read once, the subject's ids copied, so that
 * what is checked is what is held. A getter that answers differently on a second read, or a
 * caller changing the object while the engine awaits the store, cannot slip in a value that was
 * never checked (a negative amount, an empty id). Anything but an object is answered as it is, for
 * {@link checkRequest} to refuse; the estimate is read by {@link readEstimate}.
 */
export function snapshotRequest(request: ReserveRequest): ReserveRequest {
  if (typeof request !== 'object' || request === null) return request
  const { subject, estimate, model, feature, attributes, attempt } = request
  return { subject: copySubject(subject), estimate, model, feature, attributes, attempt }
}

/** A copy of a subject's ids, read once (for…in, as the checks read them); anything else as it is. */
export function copySubject(subject: Subject): Subject {
  if (typeof subject !== 'object' || subject === null || Array.isArray(subject)) return subject
  const copy: Record<string, string> = {}
  for (const dimension in subject) {
    const id = subject[dimension]!
    // an own `__proto__` id (from JSON) stays an id, not the copy's prototype
    if (dimension === '__proto__')
      Object.defineProperty(copy, dimension, {
        value: id,
        enumerable: true,
        writable: true,
        configurable: true,
      })
    else copy[dimension] = id
  }
  return copy
}

/**
 * Throws a `TollgateError` describing the first problem in a reserve request, but its estimate
 * (see {@link readEstimate}). `idsKnown`: the subject's ids are already known to be valid (see
 * `Plans.known`), so only the rest is checked.
 */
export function checkRequest(request: ReserveRequest, maxIdLength: number, idsKnown = false): void {
  if (typeof request !== 'object' || request === null) {
    throw new TollgateError('invalid_request', 'reserve() needs a request object')
  }
  const { subject, model, feature, attributes, attempt } = request
  checkParts(subject, model, feature, attributes, attempt, maxIdLength, idsKnown)
}

/** {@link checkRequest} of a request's fields, each read once by the caller. */
export function checkParts(
  subject: Subject,
  model: string | undefined,
  feature: string | undefined,
  attributes: ReserveRequest['attributes'],
  attempt: number | undefined,
  maxIdLength: number,
  idsKnown: boolean,
): void {
  if (typeof subject !== 'object' || subject === null || Array.isArray(subject)) {
    throw new TollgateError('invalid_subject', 'subject must be an object of dimension → id')
  }
  if (!idsKnown) checkIds(subject, maxIdLength)
  if (model !== undefined && (typeof model !== 'string' || model.length === 0)) {
    throw new TollgateError('invalid_request', 'model must be a non-empty string')
  }
  // a model may name a partition (`per: model`) and a key, as an id does
  if (model !== undefined && model.length > maxIdLength) {
    throw new TollgateError('invalid_request', `model is longer than ${maxIdLength} characters`)
  }
  if (
    feature !== undefined &&
    (typeof feature !== 'string' || feature.length === 0 || feature.length > maxIdLength)
  ) {
    throw new TollgateError('invalid_request', 'feature must be a non-empty string')
  }
  if (attributes !== undefined) checkAttributes(attributes)
  if (attempt !== undefined && (!Number.isInteger(attempt) || attempt < 1 || attempt > 1_000)) {
    throw new TollgateError('invalid_request', 'attempt must be a whole number from 1 to 1000')
  }
}

/**
 * A request's estimate, each field read once and checked: a fresh object the engine holds from
 * (what was checked is what is held), or `undefined` when there is none. Throws `invalid_amount`.
 */
export function readEstimate(estimate: Estimate | undefined): Estimate | undefined {
  if (estimate === undefined) return undefined
  if (typeof estimate !== 'object' || estimate === null) {
    throw new TollgateError('invalid_amount', 'estimate must be an object')
  }
  const { inputTokens, maxOutputTokens, units } = estimate
  if (inputTokens !== undefined) checkAmount(inputTokens, 'estimate.inputTokens')
  if (maxOutputTokens !== undefined) checkAmount(maxOutputTokens, 'estimate.maxOutputTokens')
  const read = readUnits(units, 'estimate.units')
  if (inputTokens === undefined && maxOutputTokens === undefined && units === undefined)
    checkFields(estimate, ESTIMATE_FIELDS, 'estimate')
  return { inputTokens, maxOutputTokens, units: read }
}

/** The fields of an estimate and of a usage report, and what other names people give them. */
const ESTIMATE_FIELDS: Fields = {
  known: new Set(['inputTokens', 'maxOutputTokens', 'units']),
  meant: {
    outputTokens: 'maxOutputTokens',
    max_tokens: 'maxOutputTokens',
    max_completion_tokens: 'maxOutputTokens',
    max_output_tokens: 'maxOutputTokens',
    prompt_tokens: 'inputTokens',
    input_tokens: 'inputTokens',
  },
  list: 'inputTokens, maxOutputTokens and units',
  hint: '',
}
const USAGE_FIELDS: Fields = {
  known: new Set(['inputTokens', 'cachedInputTokens', 'outputTokens', 'cost', 'units', 'estimated']),
  meant: {
    prompt_tokens: 'inputTokens',
    input_tokens: 'inputTokens',
    completion_tokens: 'outputTokens',
    output_tokens: 'outputTokens',
    cached_tokens: 'cachedInputTokens',
    cache_read_input_tokens: 'cachedInputTokens',
  },
  list: 'inputTokens, cachedInputTokens, outputTokens, cost, units and estimated',
  hint: " (openAIUsage() in @tollgate/llm reads a provider's usage object)",
}
interface Fields {
  known: ReadonlySet<string>
  meant: Readonly<Record<string, string>>
  list: string
  hint: string
}

/**
 * Throws `invalid_amount` for the first field of `value` that is not one of `fields`. Called only
 * when no known field is given, where a misnamed one (a provider's `prompt_tokens`) would otherwise
 * pass unseen: the estimate would hold the defaults, the report settle at the estimate.
 */
function checkFields(value: object, fields: Fields, path: string): void {
  for (const key in value) {
    if (fields.known.has(key)) continue
    const meant = Object.hasOwn(fields.meant, key) ? fields.meant[key] : undefined
    throw new TollgateError(
      'invalid_amount',
      meant
        ? `${path}.${key} is not ${path === 'usage' ? 'a usage' : 'an estimate'} field: give it as ${meant}${fields.hint}`
        : `${path}.${key} is not ${path === 'usage' ? 'a usage' : 'an estimate'} field: the fields are ${fields.list}`,
    )
  }
}

/** Throws `invalid_subject` for the first id that is not a non-empty string of at most `maxIdLength`. */
function checkIds(subject: Subject, maxIdLength: number, path = 'subject'): void {
  for (const dimension in subject) {
    const id: unknown = subject[dimension]
    if (typeof id !== 'string') {
      throw new TollgateError('invalid_subject', `${path}.${dimension} must be a string id, got ${typeof id}`)
    }
    if (id.length === 0) throw new TollgateError('invalid_subject', `${path}.${dimension} is empty`)
    if (id.length > maxIdLength) {
      throw new TollgateError(
        'invalid_subject',
        `${path}.${dimension} is longer than ${maxIdLength} characters`,
      )
    }
  }
}

/**
 * Throws `invalid_subject` unless `ids` is an object of non-empty string ids (a counter
 * reference's `subject`, or `top`'s `where`), named by `path` in the message.
 */
export function checkIdMap(ids: unknown, maxIdLength: number, path: string): asserts ids is Subject {
  if (typeof ids !== 'object' || ids === null || Array.isArray(ids)) {
    throw new TollgateError('invalid_subject', `${path} must be an object of dimension → id`)
  }
  checkIds(ids as Subject, maxIdLength, path)
}

/**
 * Throws `invalid_request` unless `ref` is an object naming a rule, and maybe a metric, by string:
 * a counter reference (`override`, `credit`) or a `top` query, named by `what` in the message.
 */
export function checkRuleRef(ref: unknown, what: string): asserts ref is { rule: string; metric?: string } {
  if (typeof ref !== 'object' || ref === null) {
    throw new TollgateError('invalid_request', `${what} must be an object with the rule's id`)
  }
  const { rule, metric } = ref as { rule?: unknown; metric?: unknown }
  if (typeof rule !== 'string')
    throw new TollgateError('invalid_request', `${what}.rule must be a rule id (a string)`)
  if (metric !== undefined && typeof metric !== 'string') {
    throw new TollgateError('invalid_request', `${what}.metric must be a metric name (a string)`)
  }
}

/**
 * Throws `invalid_request` unless `attributes` is an object whose values a plan can be keyed by
 * (as JSON) and matched on: no function, symbol, bigint, NaN or infinite number at the top.
 */
function checkAttributes(attributes: unknown): void {
  if (typeof attributes !== 'object' || attributes === null || Array.isArray(attributes)) {
    throw new TollgateError('invalid_request', 'attributes must be an object of name → value')
  }
  for (const name in attributes) {
    const value: unknown = (attributes as Record<string, unknown>)[name]
    const kind = typeof value
    if (
      kind === 'function' ||
      kind === 'symbol' ||
      kind === 'bigint' ||
      (kind === 'number' && !Number.isFinite(value))
    ) {
      throw new TollgateError(
        'invalid_request',
        `attributes.${name} must be a string, a finite number, a boolean or a list of strings`,
      )
    }
  }
}

/** Whether `value` is a whole number in [0, MAX_AMOUNT] (what `checkAmount` accepts). */
const isAmount = (value: unknown): boolean =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_AMOUNT

/**
 * A usage report, each field read once and checked: a fresh object the settle charges from (what
 * was checked is what is charged). Throws `invalid_amount` for a bad report.
 */
export function readUsage(usage: Usage): Usage {
  if (typeof usage !== 'object' || usage === null)
    throw new TollgateError('invalid_amount', 'usage must be an object')
  const { inputTokens, cachedInputTokens, outputTokens, cost, units, estimated } = usage
  // one test for the usual report; `checkAmount` names the field when one is wrong
  if (
    !(
      (inputTokens === undefined || isAmount(inputTokens)) &&
      (cachedInputTokens === undefined || isAmount(cachedInputTokens)) &&
      (outputTokens === undefined || isAmount(outputTokens)) &&
      (cost === undefined || isAmount(cost))
    )
  ) {
    if (inputTokens !== undefined) checkAmount(inputTokens, 'usage.inputTokens')
    if (cachedInputTokens !== undefined) checkAmount(cachedInputTokens, 'usage.cachedInputTokens')
    if (outputTokens !== undefined) checkAmount(outputTokens, 'usage.outputTokens')
    if (cost !== undefined) checkAmount(cost, 'usage.cost')
  }
  if ((cachedInputTokens ?? 0) > (inputTokens ?? Number.POSITIVE_INFINITY)) {
    throw new TollgateError('invalid_amount', 'usage.cachedInputTokens cannot exceed usage.inputTokens')
  }
  const read = readUnits(units, 'usage.units')
  if (estimated !== undefined && typeof estimated !== 'boolean') {
    throw new TollgateError('invalid_request', 'usage.estimated must be a boolean')
  }
  if (
    inputTokens === undefined &&
    outputTokens === undefined &&
    cachedInputTokens === undefined &&
    cost === undefined &&
    units === undefined
  )
    checkFields(usage, USAGE_FIELDS, 'usage')
  return { inputTokens, cachedInputTokens, outputTokens, cost, units: read, estimated }
}
