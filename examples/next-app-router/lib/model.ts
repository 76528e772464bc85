/**
 * A stand-in for an LLM call, so that the example runs offline. Replace it with your client
 * (for example `wrapOpenAI` from `@tollgate/llm`, or `fetch` to your provider).
 */
export async function complete(
  model: string,
  prompt: string,
): Promise<{ text: string; inputTokens: number; outputTokens: number }> {
  const text = `(${model}) You said: ${prompt}`
  return { text, inputTokens: prompt.split(/\s+/).length + 7, outputTokens: text.split(/\s+/).length }
}
