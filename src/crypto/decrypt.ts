/**
 * Decrypting an age file that arrives in pieces of any size (the leaves of a
 * UnixFS file, in order): the header is gathered and its file key unwrapped
 * by age-encryption's Decrypter, then the payload is opened chunk by chunk
 * (stream.ts). Nothing but one header and one sealed chunk is held.
 */
import type { Decrypter } from 'age-encryption'
import { CairnError } from '../errors.js'
import { headerLength, MAX_HEADER, readFileKey, startsLikeAge } from './header.js'
import { PayloadOpener } from './stream.js'

export class AgeFileDecryptor {
  private head: Buffer[] = []
  private headSize = 0
  private opener: PayloadOpener | undefined

  constructor (private readonly decrypter: Decrypter, private readonly what = 'the file') {}

  /** Takes the next bytes of the age file; returns the plaintext they complete. */
  async update (bytes: Uint8Array): Promise<Buffer[]> {
    if (this.opener !== undefined) return this.opener.update(bytes)
    this.head.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
    this.headSize += bytes.byteLength
    const gathered = this.head.length === 1 ? this.head[0] : Buffer.concat(this.head, this.headSize)
    this.head = [gathered]
    if (!startsLikeAge(gathered)) throw new CairnError('ERR_DECRYPTION_FAILED', `${this.what} is not an age file (no age-encryption.org/v1 header)`)
    const length = headerLength(gathered)
    if (length === undefined) {
      if (this.headSize > MAX_HEADER) throw new CairnError('ERR_DECRYPTION_FAILED', `${this.what} has an age header longer than ${MAX_HEADER} bytes`)
      return []
    }
    const fileKey = await readFileKey(this.decrypter, gathered.subarray(0, length))
    this.opener = new PayloadOpener(fileKey)
    this.head = []
    return this.opener.update(gathered.subarray(length))
  }

  /** Ends the file: the last plaintext, once the last chunk authenticates as the last. */
  final (): Buffer[] {
    if (this.opener === undefined) throw new CairnError('ERR_DECRYPTION_FAILED', `${this.what} ends inside its age header`)
    return this.opener.final()
  }
}

/** All of a small age file's plaintext (a manifest), refusing more than `limit` bytes. */
export async function decryptAll (decrypter: Decrypter, parts: AsyncIterable<Uint8Array>, limit: number, what: string): Promise<Buffer> {
  const decryptor = new AgeFileDecryptor(decrypter, what)
  const out: Buffer[] = []
  let size = 0
  const take = (chunks: Buffer[]): void => {
    for (const chunk of chunks) {
      size += chunk.byteLength
      if (size > limit) throw new CairnError('ERR_DAG_INVALID', `${what} is larger than ${limit} bytes`)
      out.push(chunk)
    }
  }
  for await (const part of parts) take(await decryptor.update(part))
  take(decryptor.final())
  return Buffer.concat(out, size)
}
