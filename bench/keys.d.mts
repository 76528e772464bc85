import type { Redis } from 'ioredis'

/** Deletes every key matching `pattern`; answers how many. */
export function deleteMatching(client: Redis, pattern: string): Promise<number>
/** How many keys match `pattern`. */
export function countMatching(client: Redis, pattern: string): Promise<number>
