/**
 * Sealing a file's payload for the importer, on the seal pool's worker when
 * there is enough of it (seal-pool.ts says why), on the calling thread when
 * there is not. The bytes are the same either way (stream.ts).
 */
import { CairnError } from '../errors.js'
import { MIN_WORKER_CHUNKS, SLOT_CHUNKS, sealPool, type Slot } from './seal-pool.js'
import { CHUNK, chunkCount, NONCE, payloadRange, PayloadSealer, SEALED, TAG } from './stream.js'

/** What the first pass writes a payload through: plaintext in order in, payload bytes in order out. */
export interface PayloadWriter {
  /** takes the next plaintext; resolves once it has been copied (the caller may reuse its buffer) */
  update: (plaintext: Uint8Array) => Promise<void>
  /** resolves once every payload byte has gone to the sink */
  final: () => Promise<void>
  /** gives back what an unfinished writer holds (after a failure); nothing after `final` */
  abort: () => void
}

/** Chunks a first-pass job seals at once. */
const BATCH = 32

/**
 * A writer sealing a payload of `size` plaintext bytes under `key`; `sink`
 * gets the payload bytes in order (views it must copy before returning), and
 * chunk i's tag is kept at tags[16i…].
 */
export function payloadWriter (key: Uint8Array, nonce: Uint8Array, size: number, tags: Buffer, sink: (bytes: Uint8Array) => void): PayloadWriter {
  if (chunkCount(size) < MIN_WORKER_CHUNKS) {
    const sealer = new PayloadSealer(key, nonce, tags)
    return {
      update: async plaintext => { for (const part of sealer.update(plaintext)) sink(part) },
      final: async () => { for (const part of sealer.final()) sink(part) },
      abort: () => {}
    }
  }
  return new PooledWriter(key, nonce, tags, sink)
}

class PooledWriter implements PayloadWriter {
  private slot: Slot | undefined
  private used = 0
  private index = 0
  private started = false
  /** the sinks of the jobs sent, in order */
  private tail: Promise<void> = Promise.resolve()
  private failure: unknown

  constructor (private readonly key: Uint8Array, private readonly nonce: Uint8Array, private readonly tags: Buffer, private readonly sink: (bytes: Uint8Array) => void) {}

  async update (plaintext: Uint8Array): Promise<void> {
    this.check()
    if (!this.started) {
      this.sink(this.nonce)
      this.started = true
    }
    let rest = plaintext
    while (rest.byteLength > 0) {
      this.slot ??= await sealPool().acquire()
      if (this.used === BATCH * CHUNK) {
        // a full batch with more plaintext after it: none of its chunks is the last
        this.send(this.slot, BATCH, this.used, -1)
        this.slot = await sealPool().acquire()
        this.used = 0
      }
      const n = Math.min(BATCH * CHUNK - this.used, rest.byteLength)
      this.slot.input.set(rest.subarray(0, n), this.used)
      this.used += n
      rest = rest.subarray(n)
    }
  }

  async final (): Promise<void> {
    this.check()
    if (!this.started) {
      this.sink(this.nonce)
      this.started = true
    }
    const slot = this.slot ?? await sealPool().acquire()
    this.slot = undefined
    const count = Math.max(1, Math.ceil(this.used / CHUNK))
    this.send(slot, count, this.used, this.index + count - 1)
    await this.tail
    this.check()
  }

  abort (): void {
    if (this.slot !== undefined) sealPool().release(this.slot)
    this.slot = undefined
    this.failure ??= new Error('aborted')
  }

  private send (slot: Slot, count: number, length: number, last: number): void {
    const first = this.index
    this.index += count
    const sealed = sealPool().seal(slot, this.key, first, count, last, length)
    sealed.catch(() => {})
    this.tail = this.tail.then(async () => {
      try {
        const total = await sealed
        if (this.failure !== undefined) return
        for (let j = 0; j < count; j++) {
          const end = Math.min(total, (j + 1) * SEALED)
          const index = first + j
          if ((index + 1) * TAG <= this.tags.byteLength) this.tags.set(slot.output.subarray(end - TAG, end), index * TAG)
        }
        this.sink(slot.output.subarray(0, total))
      } catch (err) {
        this.failure ??= err
      } finally {
        sealPool().release(slot)
      }
    })
  }

  private check (): void {
    if (this.failure !== undefined) throw this.failure
  }
}

/**
 * `payloadRange` (stream.ts), sealing on the pool's worker when the range
 * spans enough chunks: the plaintext is read straight into a slot. Without
 * `tags` (a one-pass import seals each chunk the first time here), nothing
 * is checked.
 */
export async function sealedRange (
  key: Uint8Array, nonce: Uint8Array, size: number, offset: number, length: number, into: Uint8Array,
  read: (buffer: Uint8Array, length: number, position: number) => Promise<number>, tags?: Buffer
): Promise<void> {
  const end = offset + length
  const at = Math.max(offset, NONCE)
  const first = Math.floor((at - NONCE) / SEALED)
  const final = Math.floor((end - 1 - NONCE) / SEALED)
  const count = final - first + 1
  if (end <= NONCE || count < MIN_WORKER_CHUNKS || count > SLOT_CHUNKS) {
    await payloadRange(key, nonce, size, offset, length, into, read, tags)
    return
  }
  let written = 0
  if (offset < NONCE) {
    into.set(nonce.subarray(offset, NONCE), 0)
    written = NONCE - offset
  }
  const pool = sealPool()
  const slot = await pool.acquire()
  try {
    const plainStart = first * CHUNK
    const plainLength = Math.min(size, (final + 1) * CHUNK) - plainStart
    const got = await read(slot.input.subarray(0, plainLength), plainLength, plainStart)
    if (got !== plainLength) throw new CairnError('ERR_FILE_CHANGED', `the file is shorter than when it was read (${plainStart + got} bytes, expected ${size})`)
    const total = await pool.seal(slot, key, first, count, chunkCount(size) - 1, plainLength)
    for (let j = 0; j < count; j++) {
      const tagEnd = Math.min(total, (j + 1) * SEALED)
      const index = first + j
      if (tags !== undefined && tags.compare(slot.output, tagEnd - TAG, tagEnd, index * TAG, (index + 1) * TAG) !== 0) {
        throw new CairnError('ERR_FILE_CHANGED', `the file changed after it was read: bytes ${index * CHUNK}–${index * CHUNK + CHUNK} differ`)
      }
    }
    // the sealed chunks lie in the slot as they do in the payload, from chunk `first` on
    const base = NONCE + first * SEALED
    into.set(slot.output.subarray(at - base, end - base), written)
  } finally {
    pool.release(slot)
  }
}
