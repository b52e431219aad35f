/**
 * undici's `request`, loaded on first use. undici is large (its whole client,
 * pool, fetch and WebSocket code is evaluated on import: ~0.1–0.2 s of a
 * command's start-up on a 2-core machine), and most commands that may talk
 * to a provider often never do — `cairn get` of a local root, `deals` — so
 * the modules that speak HTTP import this instead of 'undici' itself.
 * Types come from undici unchanged (`import type` costs nothing at run time).
 * A caller that starts a deadline of its own (an AbortSignal.timeout) awaits
 * `undici()` first, so that loading the module does not eat into it.
 */
import type * as Undici from 'undici'

let loading: Promise<typeof Undici> | undefined

/** The undici module, imported once. */
export async function undici (): Promise<typeof Undici> {
  loading ??= import('undici')
  return await loading
}

/** undici's `request`, same arguments and answer. */
export const request: typeof Undici.request = async (url, options) => await (await undici()).request(url, options)
