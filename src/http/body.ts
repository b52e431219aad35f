/**
 * The one bounded body reader of the project, for requests and responses
 * alike: a peer that sends more than it may (or declares that it will) gets a
 * coded error the moment it passes the limit, never this process's memory.
 * The error is the caller's, since only it knows what the body was meant to be.
 */
import type { CairnError } from '../errors.js'

export interface BoundedBody {
  /** most bytes the body may have */
  limit: number
  /** the error for a body over the limit; `declared` when its Content-Length said so before a byte came */
  tooLarge: (declared?: number) => CairnError
  /** the body's Content-Length, if it sent one */
  declared?: string | number | undefined
  /** bytes received so far, after each chunk (for a caller's own deadline messages) */
  progress?: (received: number) => void
}

/** Fails before reading when the declared length is already over the limit. */
export function checkDeclared (options: BoundedBody): void {
  if (options.declared === undefined) return
  const declared = Number(options.declared)
  if (Number.isFinite(declared) && declared > options.limit) throw options.tooLarge(declared)
}

/**
 * The chunks of `body`, passed on as they come, failing with `tooLarge()` the
 * moment they pass the limit. Leaving the loop early (a throw included)
 * returns the source iterator, which destroys a Node stream behind it.
 */
export async function * boundedChunks (body: AsyncIterable<Uint8Array>, options: BoundedBody): AsyncGenerator<Uint8Array> {
  checkDeclared(options)
  let size = 0
  for await (const chunk of body) {
    size += chunk.byteLength
    if (size > options.limit) throw options.tooLarge()
    options.progress?.(size)
    yield chunk
  }
}

/** The whole of `body` as one array, read under the same bounds as `boundedChunks`. */
export async function readBounded (body: AsyncIterable<Uint8Array>, options: BoundedBody): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of boundedChunks(body, options)) {
    chunks.push(chunk)
    size += chunk.byteLength
  }
  return new Uint8Array(Buffer.concat(chunks, size))
}
