/**
 * The Redis version the scripts need, and a clear error when one fails on an older server. The
 * scripts use options Redis added in 7.0 (`PEXPIRE … NX` and `GT`): on Redis 6 every script fails,
 * and the engine, taking that for an unavailable store, would apply the failure modes (rate limits
 * admitting everything) for as long as nobody looked.
 */
import { TollgateError } from '@tollgate/core'

/** The first Redis major version the scripts run on. */
export const MIN_MAJOR = 7

type InfoClient = { info(section: string): Promise<string> }

/** Each client's server version, read once (forgotten when the read fails, to be tried again). */
const versions = new WeakMap<object, Promise<string>>()

/** The `redis_version` of `INFO server` text, or `undefined`. */
export function versionOf(info: string): string | undefined {
  return /^redis_version:(\S+)/m.exec(info)?.[1]
}

/** Whether a server version is older than the scripts need. An unreadable version is given the benefit of the doubt. */
export function tooOld(version: string): boolean {
  const major = Number.parseInt(version, 10)
  return Number.isFinite(major) && major < MIN_MAJOR
}

/**
 * What a script's `ReplyError` should be reported as: a `store_error` (the engine throws it to the
 * caller instead of applying failure modes) when the server is older than Redis 7, else the error itself.
 */
export async function explainReplyError(client: InfoClient, error: unknown): Promise<unknown> {
  let version = versions.get(client)
  if (version === undefined) {
    version = client.info('server').then((text) => versionOf(text) ?? 'unknown')
    versions.set(client, version)
    version.catch(() => versions.delete(client))
  }
  try {
    const running = await version
    if (tooOld(running))
      return new TollgateError(
        'store_error',
        `@tollgate/redis needs Redis ${MIN_MAJOR}.0 or newer (its scripts use PEXPIRE with NX and GT); ` +
          `this server runs ${running}. Redis said: ${(error as Error)?.message ?? String(error)}`,
        { cause: error },
      )
  } catch {
    // the version could not be read: the script's own error says what it can
  }
  return error
}
