import { run } from './simulate.ts'
await run(Number(process.argv[2] ?? 200000))
