/**
 * A promise shaped like the SDKs' `APIPromise`: awaiting it gives the parsed result, and
 * `withResponse()` / `asResponse()` work as they do on the SDK's own promise. Each is made
 * once: awaiting parses (and settles) once, whichever way the result is asked for.
 */

/** What `withResponse()` resolves to. */
export interface WithResponse<T> {
  data: T
  response: Response
  request_id?: string | null
}

/** How a {@link GatedPromise} gets its result, each called at most once. */
export interface GatedSource<T> {
  /** The parsed result. */
  data: () => Promise<T>
  /** The SDK's `withResponse()`, whose `data` is replaced by {@link GatedSource.data}'s. */
  withResponse: () => Promise<WithResponse<unknown>>
  /** The raw response, its body unread. */
  raw: () => Promise<Response>
}

/**
 * @example
 * const promise = new GatedPromise({ data: () => parsed(), withResponse: () => sdk.withResponse(), raw: () => sdk.asResponse() })
 */
export class GatedPromise<T> extends Promise<T> {
  #source: GatedSource<T>
  #data: Promise<T> | undefined
  #withResponse: Promise<WithResponse<T>> | undefined
  #response: Promise<Response> | undefined

  constructor(source: GatedSource<T>) {
    super((resolve) => resolve(null as T))
    this.#source = source
  }

  static override get [Symbol.species]() {
    return Promise
  }

  #parsed(): Promise<T> {
    this.#data ??= this.#source.data()
    return this.#data
  }

  /** The parsed result and the raw response. */
  withResponse(): Promise<WithResponse<T>> {
    this.#withResponse ??= Promise.all([this.#parsed(), this.#source.withResponse()]).then(
      ([data, result]) => ({ ...result, data }),
    )
    return this.#withResponse
  }

  /** The raw response, its body unread (usage is read from a copy). */
  asResponse(): Promise<Response> {
    this.#response ??= this.#source.raw()
    return this.#response
  }

  // biome-ignore lint/suspicious/noThenProperty: a Promise subclass, as the SDKs' own APIPromise
  override then<A = T, B = never>(
    onfulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.#parsed().then(onfulfilled, onrejected)
  }

  override catch<B = never>(onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<T | B> {
    return this.then(undefined, onrejected)
  }

  override finally(onfinally?: (() => void) | null): Promise<T> {
    return this.then().finally(onfinally)
  }
}
