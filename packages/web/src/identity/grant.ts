/**
 * What a key registry accepts as a grant, checked when a key is issued or added: a grant that
 * could never make a valid request (an id that is not a string, attributes a policy cannot match)
 * is refused then, not on every request made with the key.
 */
import type { KeyGrant } from './keys.js'

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** A non-empty string: an id, a plan, a feature. */
export const isText = (value: unknown): boolean => typeof value === 'string' && value.length > 0

/**
 * An attribute value a policy can match on (see `Attributes` in `@tollgate/core`): a string, a
 * finite number, a boolean, `null` (from JS or JSON) or a list of strings.
 */
export const isAttribute = (value: unknown): boolean =>
  value === null ||
  typeof value === 'string' ||
  typeof value === 'boolean' ||
  (typeof value === 'number' && Number.isFinite(value)) ||
  (Array.isArray(value) && value.every((v) => typeof v === 'string'))

/** Throws a `TypeError` naming the first part of `grant` that is not what {@link KeyGrant} says. */
export function checkGrant(grant: unknown, call: string): asserts grant is KeyGrant {
  if (!isObject(grant)) throw new TypeError(`${call}: the grant must be an object with a subject`)
  const { subject, plan, environment, features, attributes, name } = grant
  if (!isObject(subject)) throw new TypeError(`${call}: grant.subject must be an object of dimension → id`)
  for (const [dimension, id] of Object.entries(subject))
    if (!isText(id)) throw new TypeError(`${call}: grant.subject.${dimension} must be a non-empty string`)
  for (const [field, value] of Object.entries({ plan, environment, name }))
    if (value !== undefined && !isText(value))
      throw new TypeError(`${call}: grant.${field} must be a non-empty string`)
  if (features !== undefined && !(Array.isArray(features) && features.every(isText)))
    throw new TypeError(`${call}: grant.features must be a list of non-empty strings`)
  if (attributes !== undefined) {
    if (!isObject(attributes))
      throw new TypeError(`${call}: grant.attributes must be an object of name → value`)
    for (const [attribute, value] of Object.entries(attributes))
      if (!isAttribute(value))
        throw new TypeError(
          `${call}: grant.attributes.${attribute} must be a string, a finite number, a boolean, null or a list of strings`,
        )
  }
}
