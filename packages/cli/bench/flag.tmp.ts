import v8 from 'node:v8'
v8.setFlagsFromString('--max-semi-space-size=128')
v8.setFlagsFromString('--semi-space-growth-factor=4')
await import('./exp.tmp.ts')
