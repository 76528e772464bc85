import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const src = (path: string) => fileURLToPath(new URL(path, import.meta.url))

export default defineConfig({
  resolve: {
    alias: [
      { find: /^@tollgate\/core\/testing$/, replacement: src('./packages/core/src/testing/index.ts') },
      { find: /^@tollgate\/core$/, replacement: src('./packages/core/src/index.ts') },
      { find: /^@tollgate\/llm$/, replacement: src('./packages/llm/src/index.ts') },
      { find: /^@tollgate\/redis$/, replacement: src('./packages/redis/src/index.ts') },
      { find: /^@tollgate\/cli$/, replacement: src('./packages/cli/src/index.ts') },
      { find: /^@tollgate\/web\/redis$/, replacement: src('./packages/web/src/redis/index.ts') },
      { find: /^@tollgate\/web$/, replacement: src('./packages/web/src/index.ts') },
      { find: /^@tollgate\/express$/, replacement: src('./packages/express/src/index.ts') },
      { find: /^@tollgate\/hono$/, replacement: src('./packages/hono/src/index.ts') },
      { find: /^@tollgate\/next$/, replacement: src('./packages/next/src/index.ts') },
      { find: /^@tollgate\/audit\/webhook$/, replacement: src('./packages/audit/src/webhook/index.ts') },
      { find: /^@tollgate\/audit$/, replacement: src('./packages/audit/src/index.ts') },
      { find: /^@tollgate\/http\/node$/, replacement: src('./packages/http/src/node.ts') },
      { find: /^@tollgate\/http$/, replacement: src('./packages/http/src/index.ts') },
    ],
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'examples/**/*.test.ts'],
    typecheck: { enabled: true, include: ['packages/*/src/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
    pool: 'forks',
  },
})
