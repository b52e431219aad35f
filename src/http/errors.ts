/**
 * What the client side of every HTTP exchange makes of a failure: a network
 * failure (undici's `UND_ERR_*` codes, a reset socket) becomes ERR_TIMEOUT or
 * ERR_UNREACHABLE (exit 5), and a coded error body `{"error": {"code",
 * "message", "details"}}` (docs/protocol.md, "Error bodies") its own code.
 */
import { CairnError, codes, isCairnError, type ErrorCode } from '../errors.js'

interface SystemLike { code?: string, name?: string, message?: string, cause?: { code?: string } }

/** Whether a thrown value is a failure of the connection rather than of this process (a disk, a bug). */
export function isNetworkFailure (err: unknown): boolean {
  if (isCairnError(err)) return false
  const e = (err ?? {}) as SystemLike
  const code = e.code ?? e.cause?.code
  if (typeof code === 'string' && (code.startsWith('UND_ERR') || /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH)$/.test(code))) return true
  return e.name === 'AbortError' || e.name === 'TimeoutError'
}

/**
 * A failed exchange with `peer` (a phrase such as `provider http://…`) as a
 * coded error: CairnErrors pass through, timeouts are ERR_TIMEOUT, the rest
 * ERR_UNREACHABLE. When `deadline` is given and aborted, its passing is the
 * cause, whatever the socket said.
 */
export function networkError (err: unknown, peer: string, deadline?: { signal: AbortSignal, what: string }): CairnError {
  if (isCairnError(err)) return err
  if (deadline?.signal.aborted === true) {
    const reason: unknown = deadline.signal.reason
    if (isCairnError(reason)) return reason
    return new CairnError('ERR_TIMEOUT', `${peer} did not answer ${deadline.what} before its deadline`, { cause: err })
  }
  const e = (err ?? {}) as SystemLike
  const code = e.code ?? e.cause?.code ?? e.name ?? 'error'
  if (/TIMEOUT/i.test(code) || e.name === 'TimeoutError') {
    return new CairnError('ERR_TIMEOUT', `${peer} did not answer in time (${code})`, { cause: err })
  }
  if (e.name === 'AbortError' || code === 'UND_ERR_ABORTED') {
    return new CairnError('ERR_UNREACHABLE', `request to ${peer} was aborted`, { cause: err })
  }
  const message = typeof e.message === 'string' && e.message !== '' && !e.message.includes(code) ? ` (${e.message})` : ''
  return new CairnError('ERR_UNREACHABLE', `cannot reach ${peer}: ${code}${message}`, { cause: err })
}

/**
 * The coded error in a peer's error body; a body without one still gets a
 * code from its HTTP status. `details.status` records that the peer did answer.
 */
export function providerError (url: string, status: number, text: string): CairnError {
  let parsed: { error?: { code?: unknown, message?: unknown, details?: unknown } } | undefined
  try {
    parsed = JSON.parse(text)
  } catch {}
  const code = parsed?.error?.code
  const message = typeof parsed?.error?.message === 'string' ? parsed.error.message : `HTTP ${status} ${text.slice(0, 200)}`
  const details = parsed?.error?.details !== null && typeof parsed?.error?.details === 'object' ? parsed.error.details as Record<string, unknown> : undefined
  // a code this version does not know is kept, so that a caller can still report what the peer said
  const unknown = typeof code === 'string' && !Object.hasOwn(codes, code) ? { providerCode: code } : {}
  const extra = { details: { ...details, provider: url, status, ...unknown } }
  if (typeof code === 'string' && Object.hasOwn(codes, code)) return new CairnError(code as ErrorCode, message, extra)
  if (status === 404) return new CairnError('ERR_NOT_FOUND', `provider ${url}: ${message}`, extra)
  if (status === 408 || status === 504) return new CairnError('ERR_TIMEOUT', `provider ${url}: ${message}`, extra)
  if (status >= 500) return new CairnError('ERR_UNREACHABLE', `provider ${url} failed (HTTP ${status}${typeof code === 'string' ? ` ${code}` : ''}): ${message}`, extra)
  return new CairnError('ERR_BAD_REQUEST', `provider ${url} refused the request (HTTP ${status}${typeof code === 'string' ? ` ${code}` : ''}): ${message}`, extra)
}
