/**
 * A promise shaped like the SDKs' `APIPromise`: awaiting it gives the parsed result, and
 * `withResponse()` / `asResponse()` work as they do on the SDK's own promise.
 */

/** What `withResponse()` resolves to. */
export interface WithResponse<T> {
  data: T
  response: Response
  request_id?: string | null
}

/**
 * @example
 * const promise = new GatedPromise(() => flow.parsed(), () => flow.raw())
 */
export class GatedPromise<T> extends Promise<T> {
  #parse: () => Promise<WithResponse<T>>
  #raw: () => Promise<Response>
  #parsed: Promise<WithResponse<T>> | undefined

  constructor(parse: () => Promise<WithResponse<T>>, raw: () => Promise<Response>) {
    super((resolve) => resolve(null as T))
    this.#parse = parse
    this.#raw = raw
  }

  static override get [Symbol.species]() {
    return Promise
  }

  /** The parsed result and the raw response. */
  withResponse(): Promise<WithResponse<T>> {
    this.#parsed ??= this.#parse()
    return this.#parsed
  }

  /** The raw response, its body unread (usage is read from a copy). */
  asResponse(): Promise<Response> {
    return this.#raw()
  }

  // biome-ignore lint/suspicious/noThenProperty: a Promise subclass, as the SDKs' own APIPromise
  override then<A = T, B = never>(
    onfulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.withResponse()
      .then((result) => result.data)
      .then(onfulfilled, onrejected)
  }

  override catch<B = never>(onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<T | B> {
    return this.then(undefined, onrejected)
  }

  override finally(onfinally?: (() => void) | null): Promise<T> {
    return this.then().finally(onfinally)
  }
}
