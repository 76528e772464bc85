/**
 * @tollgate/audit/webhook — the signed alerts webhook and its receiver-side check, with Web
 * APIs only (fetch, Web Crypto): no Node built-ins, so it runs on edge runtimes too.
 *
 * @example
 * import { alertWebhook, verifyAlertSignature } from '@tollgate/audit/webhook'
 * const gate = createTollgate({ policy, store, onAlert: alertWebhook({ url, secret }) })
 */
export { AuditError, type AuditErrorCode } from '../errors.js'
export {
  type AlertDelivery,
  type AlertWebhook,
  type AlertWebhookOptions,
  alertWebhook,
  retryAfterMs,
} from './send.js'
export { SIGNATURE_HEADER, signAlert, type VerifyOptions, verifyAlertSignature } from './sign.js'
