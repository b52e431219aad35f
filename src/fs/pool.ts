/**
 * Reusable large buffers for the streaming pipelines.
 *
 * A fresh buffer of a megabyte or more comes from mmap and is page-faulted in
 * on first touch, then unmapped when collected: measured on a 2-core VM,
 * writing 256 MiB from fresh 1 MiB buffers cost ten times the time and six
 * times the system CPU of writing it from buffers used again. A producer
 * takes buffers here; whoever holds one last gives it back with `release`
 * once nothing reads it any more. A buffer never given back is simply
 * collected, so a consumer that knows nothing of the pool stays correct.
 */

/** Buffers are kept in size classes of this granularity. */
const CLASS = 256 * 1024
/** Below this, allocations come from the allocator's ordinary heap anyway. */
const MIN_POOLED = 64 * 1024

export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>()
  private readonly owned = new WeakSet<ArrayBuffer>()
  private readonly idle = new WeakSet<ArrayBuffer>()
  private kept = 0

  /** @param max bytes kept idle at most */
  constructor (private readonly max = 64 * 1024 * 1024) {}

  /** A buffer of exactly `length` bytes, uninitialised. */
  alloc (length: number): Buffer {
    if (length < MIN_POOLED) return Buffer.allocUnsafeSlow(length)
    const size = Math.ceil(length / CLASS) * CLASS
    const list = this.free.get(size)
    let backing = list?.pop()
    if (backing !== undefined) {
      this.idle.delete(backing)
      this.kept -= size
    } else {
      backing = new ArrayBuffer(size)
      this.owned.add(backing)
    }
    return Buffer.from(backing, 0, length)
  }

  /** Gives back a buffer from `alloc` (any view of it); others are ignored. Nothing may read it afterwards. */
  release (bytes: Uint8Array): void {
    const backing = bytes.buffer as ArrayBuffer
    if (!this.owned.has(backing) || this.idle.has(backing)) return
    if (this.kept + backing.byteLength > this.max) return
    let list = this.free.get(backing.byteLength)
    if (list === undefined) this.free.set(backing.byteLength, list = [])
    list.push(backing)
    this.idle.add(backing)
    this.kept += backing.byteLength
  }
}

/** The process-wide pool the CAR pipelines share. */
export const buffers = new BufferPool()
