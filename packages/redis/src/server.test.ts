/**
 * The server version check behind a script Redis refuses (server.ts). This machine runs Redis 7 only,
 * so the path of an older server is fed an `INFO` answer of Redis 6.2 by a one-method client.
 */
import { TollgateError } from '@tollgate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { explainReplyError, tooOld, versionOf } from './server.js'
import { testClient } from './test/redis.js'

const client = testClient()
// No offline queue: wait for the connection before the first command.
beforeAll(async () => {
  if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve))
})
afterAll(() => client.quit())

describe('the server version', () => {
  it('is read from INFO server; the test Redis is new enough', async () => {
    const version = versionOf(await client.info('server'))
    expect(version).toMatch(/^\d+\.\d+\.\d+/)
    expect(tooOld(version!)).toBe(false)
  })

  it('is too old below 7.0; an unreadable one is given the benefit of the doubt', () => {
    expect(['6.2.14', '5.0.7', '6.0.0'].map(tooOld)).toEqual([true, true, true])
    expect(['7.0.0', '7.2.4', '10.1.0', 'unknown', ''].map(tooOld)).toEqual([
      false,
      false,
      false,
      false,
      false,
    ])
  })
})

describe('a script Redis refuses', () => {
  it('on Redis 7 is reported as it is', async () => {
    const error = await client
      .eval("return redis.call('PEXPIRE', 'k', 1, 'NOPE')", 0)
      .catch((e: unknown) => e)
    expect((error as Error).message).toMatch(/Unsupported option NOPE/)
    expect((error as Error).name).toBe('ReplyError')
    expect(await explainReplyError(client, error)).toBe(error)
  })

  it('on a server older than Redis 7 becomes a store_error that names the version', async () => {
    const refused = new Error("ERR wrong number of arguments for 'pexpire' command")
    const explained = await explainReplyError(
      { info: async () => '# Server\r\nredis_version:6.2.14\r\n' },
      refused,
    )
    expect(TollgateError.isInstance(explained) && explained.code).toBe('store_error')
    expect((explained as Error).message).toMatch(/needs Redis 7\.0 or newer .* this server runs 6\.2\.14/)
    expect((explained as Error).cause).toBe(refused)
  })

  it('is reported as it is when the version cannot be read, which is tried again next time', async () => {
    let asked = 0
    const flaky = {
      info: async () => {
        asked++
        if (asked === 1) throw new Error('connection lost')
        return 'redis_version:6.2.0\r\n'
      },
    }
    const refused = new Error('ERR something')
    expect(await explainReplyError(flaky, refused)).toBe(refused)
    expect(TollgateError.isInstance(await explainReplyError(flaky, refused))).toBe(true)
    await explainReplyError(flaky, refused)
    expect(asked).toBe(2) // read once it succeeded, then remembered
  })
})
