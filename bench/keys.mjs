/** Redis keys of a benchmark run: counted and deleted with `SCAN MATCH` (never `KEYS`). */

/** Calls `each` with every batch of keys matching `pattern`. */
async function scanAll(client, pattern, each) {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await each(keys)
  } while (cursor !== '0')
}

/** Deletes every key matching `pattern`; answers how many. */
export async function deleteMatching(client, pattern) {
  let deleted = 0
  await scanAll(client, pattern, async (keys) => {
    deleted += await client.unlink(...keys)
  })
  return deleted
}

/** How many keys match `pattern`. */
export async function countMatching(client, pattern) {
  let n = 0
  await scanAll(client, pattern, (keys) => {
    n += keys.length
  })
  return n
}
