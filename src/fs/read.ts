import type { FileHandle } from 'node:fs/promises'

/**
 * Reads up to `length` bytes at `position` into `buffer`: a positional read
 * may give fewer bytes than asked. Fewer come back only at the end of the file.
 */
export async function readFully (handle: FileHandle, buffer: Uint8Array, length: number, position: number): Promise<number> {
  let done = 0
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  return done
}
