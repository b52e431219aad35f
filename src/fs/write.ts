import type { FileHandle } from 'node:fs/promises'

/**
 * Most bytes one write call asks for. Where this was measured (a 2-core VM,
 * ext4 on Linux 6.18, a balloon that hands free memory back to its host), a
 * buffered write of 1 MiB or more was slow whenever the memory under the new
 * page-cache pages had been handed back — most likely because large writes
 * get large folios, carved from the large free blocks that are the ones
 * handed back, so each page's first write is a fault in the host: 1 GiB
 * written after another program's run cost the writer 1.0–2.1 s of system
 * time in 4 MiB writes, 0.74–1.2 s in 1 MiB ones and 0.44–0.50 s in 512 KiB
 * ones (docs/performance.md "Retrieval, round six"). Elsewhere the smaller
 * writes cost a few thousand more calls per GiB.
 */
export const WRITE_UNIT = 512 * 1024

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
 * `writev`s of at most WRITE_UNIT bytes each: one pool job for many small
 * chunks instead of one each, and no write so large that it is slow.
 */
export async function writevAll (handle: FileHandle, chunks: Uint8Array[], position: number): Promise<void> {
  let rest = chunks
  while (rest.length > 0) {
    const batch: Uint8Array[] = []
    let size = 0
    for (const chunk of rest) {
      if (size === WRITE_UNIT) break
      const take = Math.min(chunk.byteLength, WRITE_UNIT - size)
      batch.push(take === chunk.byteLength ? chunk : chunk.subarray(0, take))
      size += take
    }
    const { bytesWritten } = await handle.writev(batch, position)
    position += bytesWritten
    // go on from the first byte not written (a short write, or the end of this batch)
    let skip = bytesWritten
    while (rest.length > 0 && skip >= rest[0].byteLength) { skip -= rest[0].byteLength; rest = rest.slice(1) }
    if (skip > 0) rest = [rest[0].subarray(skip), ...rest.slice(1)]
  }
}
