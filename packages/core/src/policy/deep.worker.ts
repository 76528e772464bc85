/**
 * Child process of `load.test.ts`: parses the policies named on the command line one after
 * another and prints each outcome. A process crash (not a thrown error) shows as a non-zero exit.
 */
import { TollgateError } from '../errors.js'
import { parsePolicy } from './load.js'

const make: Record<string, (depth: number) => string> = {
  flow: (depth) => `rules: ${'['.repeat(depth)}${']'.repeat(depth)}`,
  block: (depth) => `rules:\n${'- '.repeat(depth)}x\n`,
  map: (depth) => `rules: ${'{a: '.repeat(depth)}1${'}'.repeat(depth)}`,
}

for (const arg of process.argv.slice(2)) {
  const [kind, depth] = arg.split(':') as [string, string]
  try {
    parsePolicy(make[kind]!(Number(depth)))
    console.log(`${arg} accepted`)
  } catch (error) {
    console.log(
      `${arg} ${TollgateError.isInstance(error) ? error.code : 'untyped'}: ${(error as Error).message.split('\n')[0]}`,
    )
  }
}
