import { type Alert, createTollgate, type TollgateOptions } from '@tollgate/core'
import { describe, expectTypeOf, it } from 'vitest'
import {
  type AuditSink,
  alertWebhook,
  auditTo,
  callbackSink,
  closeOnExit,
  jsonLinesSink,
  type PostgresSinkOptions,
  postgresSink,
} from './index.js'

describe('types', () => {
  it('auditTo spreads into createTollgate options; a webhook is an onAlert', () => {
    const hooks = auditTo(
      callbackSink(() => {}),
      jsonLinesSink(process.stdout),
    )
    expectTypeOf(hooks.onDecision).toEqualTypeOf<NonNullable<TollgateOptions['onDecision']>>()
    expectTypeOf(hooks.onSettle).toEqualTypeOf<NonNullable<TollgateOptions['onSettle']>>()
    const webhook = alertWebhook({ url: 'https://example.com/hook', secret: process.env.SECRET! })
    expectTypeOf(webhook).toExtend<(alert: Alert) => void>()
    createTollgate({ policy: { rules: [] }, ...hooks, onAlert: webhook })
  })

  it('jsonLinesSink reports pending records and takes its bounds', () => {
    const sink = jsonLinesSink(process.stdout, { maxQueue: 10_000, closeTimeoutMs: 5_000 })
    expectTypeOf(sink.pending).toEqualTypeOf<number>()
    expectTypeOf(sink).toExtend<AuditSink>()
    postgresSink({ connectionString: 'postgres://audit@db/billing', writeTimeoutMs: 30_000 })
    closeOnExit([sink], { timeoutMs: 25_000 })
  })

  it('postgresSink takes a pool or a connection string, and reports pending rows', () => {
    const pool = { query: async () => ({ rows: [], rowCount: 0 }) }
    expectTypeOf(postgresSink({ pool }).pending).toEqualTypeOf<number>()
    // @ts-expect-error a pool needs query
    postgresSink({ pool: {} })
  })

  it('postgresSink takes exactly one of pool or connectionString', () => {
    const pool = { query: async () => ({ rows: [], rowCount: 0 }) }
    postgresSink({ pool, table: 'audit' })
    postgresSink({ connectionString: 'postgres://audit@db/billing', batchSize: 100 })
    // @ts-expect-error neither
    postgresSink({})
    // @ts-expect-error neither
    postgresSink({ table: 'audit' })
    // @ts-expect-error both
    postgresSink({ pool, connectionString: 'postgres://audit@db/billing' })
    // @ts-expect-error a connection string from process.env may be unset (the sink throws then)
    postgresSink({ connectionString: process.env.DATABASE_URL })
    expectTypeOf<{ createTable: false }>().not.toExtend<PostgresSinkOptions>()
  })
})
