import { readFileSync } from 'node:fs'
import { policy } from './simulate.ts'
import { simulate } from '../src/simulate/run.ts'
const [, , shard, of] = process.argv.map(Number)
const text = readFileSync('/tmp/exp-traffic.jsonl', 'utf8').split('\n').filter(Boolean)
const w0 = performance.now()
const mine = text.filter((l) => { const org = Number(/"org":"org-(\d+)"/.exec(l)![1]); return org % of! === shard })
const r = await simulate(policy, mine)
console.log('shard', shard, mine.length, 'wall', ((performance.now() - w0) / 1000).toFixed(1))
