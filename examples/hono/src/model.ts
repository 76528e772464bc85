/**
 * A stand-in for an LLM, so that the example runs offline: it streams a canned reply word by word
 * and reports usage as a provider would (about one token per word). Replace it with your client.
 */
import type { Usage } from '@tollgate/core'

export interface ChatModel {
  /** Stream the reply's text; `usage` resolves when the stream is done. */
  stream(
    model: string,
    prompt: string,
    signal: AbortSignal,
  ): { text: AsyncIterable<string>; usage: Promise<Usage> }
}

export function fakeModel(reply = 'Quotas keep the lights on.'): ChatModel {
  return {
    stream(_model, prompt, signal) {
      const words = reply.split(/(?= )/)
      let resolve!: (usage: Usage) => void
      const usage = new Promise<Usage>((r) => (resolve = r))
      async function* text() {
        for (const word of words) {
          if (signal.aborted) return
          yield word
        }
        resolve({ inputTokens: prompt.split(/\s+/).length + 7, outputTokens: words.length })
      }
      return { text: text(), usage }
    },
  }
}
