import type { FileHandle } from 'node:fs/promises'

/** Writes all of `bytes` at `position`: a positional write may write fewer bytes than asked. */
export async function writeAll (handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done, position + done)
    done += bytesWritten
  }
}

/**
 * Writes all of `chunks`, in order, from `position` with positional
 * `writev`s: one pool job for many chunks instead of one each.
 */
export async function writevAll (handle: FileHandle, chunks: Uint8Array[], position: number): Promise<void> {
  let rest = chunks
  while (rest.length > 0) {
    const { bytesWritten } = await handle.writev(rest, position)
    position += bytesWritten
    // a short write: go on from the first byte not written
    let skip = bytesWritten
    while (rest.length > 0 && skip >= rest[0].byteLength) { skip -= rest[0].byteLength; rest = rest.slice(1) }
    if (skip > 0) rest = [rest[0].subarray(skip), ...rest.slice(1)]
  }
}
