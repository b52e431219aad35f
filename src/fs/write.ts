import type { FileHandle } from 'node:fs/promises'

/** Writes all of `bytes` at `position`: a positional write may write fewer bytes than asked. */
export async function writeAll (handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done, position + done)
    done += bytesWritten
  }
}
