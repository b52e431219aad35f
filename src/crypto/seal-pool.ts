/**
 * Sealing age payload chunks on a worker thread.
 *
 * Why: node:crypto's ChaCha20-Poly1305 gives each 64 KiB chunk a fresh output
 * buffer, and an import seals every file twice; on the importer's main thread
 * (its critical path: hashing, framing, writing) that cost the seal itself
 * plus a garbage collection of the output buffers every few tens of MiB —
 * measured at about a second per GiB of main-thread time on a 2-core
 * machine. On a worker, both go to the other core, which the first pass
 * leaves idle. Plaintext and sealed chunks move through a few
 * SharedArrayBuffer slots, so the main thread allocates nothing per chunk.
 */
import { Worker } from 'node:worker_threads'
import { CairnError } from '../errors.js'
import { CHUNK, SEALED } from './stream.js'

/** Chunks one slot holds: a 2 MiB leaf (the largest chunk size) spans at most 33. */
export const SLOT_CHUNKS = 34
/** Slots: enough for the importer's read-ahead of a few leaves. */
const SLOTS = 4
/** Fewer chunks than this are sealed on the calling thread: a message costs more. */
export const MIN_WORKER_CHUNKS = 8

export interface SealJob {
  id: number
  slot: number
  key: Uint8Array
  /** index of the slot's first chunk in its file */
  first: number
  count: number
  /** index of the file's last chunk, which is sealed as the last */
  last: number
  /** plaintext bytes in the slot */
  length: number
}

export interface Slot {
  readonly index: number
  /** plaintext, SLOT_CHUNKS chunks */
  readonly input: Uint8Array
  /** sealed chunks, one after another */
  readonly output: Uint8Array
}

export function slotViews (memory: SharedArrayBuffer, index = 0): Slot {
  return { index, input: new Uint8Array(memory, 0, SLOT_CHUNKS * CHUNK), output: new Uint8Array(memory, SLOT_CHUNKS * CHUNK, SLOT_CHUNKS * SEALED) }
}

class SealPool {
  private worker: Worker | undefined
  private readonly memory: SharedArrayBuffer[] = []
  private readonly slots: Slot[] = []
  private readonly free: Slot[] = []
  private readonly waiting: Array<(slot: Slot) => void> = []
  private readonly jobs = new Map<number, { resolve: (length: number) => void, reject: (err: Error) => void }>()
  private next = 0

  constructor () {
    for (let i = 0; i < SLOTS; i++) {
      const memory = new SharedArrayBuffer(SLOT_CHUNKS * (CHUNK + SEALED))
      this.memory.push(memory)
      const slot = slotViews(memory, i)
      this.slots.push(slot)
      this.free.push(slot)
    }
  }

  /** A free slot, once one is. */
  async acquire (): Promise<Slot> {
    const slot = this.free.pop()
    if (slot !== undefined) return slot
    return await new Promise(resolve => this.waiting.push(resolve))
  }

  release (slot: Slot): void {
    const waiter = this.waiting.shift()
    if (waiter !== undefined) waiter(slot)
    else this.free.push(slot)
  }

  /** Seals `count` chunks of the slot's input; resolves with the sealed bytes now in its output. */
  async seal (slot: Slot, key: Uint8Array, first: number, count: number, last: number, length: number): Promise<number> {
    if (count > SLOT_CHUNKS || length > count * CHUNK) throw new RangeError(`a slot holds ${SLOT_CHUNKS} chunks; asked for ${count} (${length} bytes)`)
    const worker = this.start()
    const id = this.next++
    const done = new Promise<number>((resolve, reject) => this.jobs.set(id, { resolve, reject }))
    worker.ref()
    worker.postMessage({ id, slot: slot.index, key, first, count, last, length } satisfies SealJob)
    return await done
  }

  private start (): Worker {
    if (this.worker !== undefined) return this.worker
    // the parent's --input-type/--eval flags would make the worker refuse its own file
    const execArgv = process.execArgv.filter((arg, i, all) => !/^(--input-type|--eval|-e$|-p$|--print)/.test(arg) && !['-e', '--eval', '-p', '--print'].includes(all[i - 1]))
    const worker = new Worker(new URL('./seal-worker.js', import.meta.url), { workerData: { slots: this.memory }, execArgv })
    worker.on('message', (reply: { id: number, length?: number, error?: string }) => {
      const job = this.jobs.get(reply.id)
      this.jobs.delete(reply.id)
      if (this.jobs.size === 0) worker.unref()
      if (reply.error !== undefined) job?.reject(new CairnError('ERR_INTERNAL', `sealing failed: ${reply.error}`))
      else job?.resolve(reply.length as number)
    })
    const fail = (err: Error): void => {
      this.worker = undefined
      for (const job of this.jobs.values()) job.reject(new CairnError('ERR_INTERNAL', `the sealing worker stopped: ${err.message}`, { cause: err }))
      this.jobs.clear()
    }
    worker.on('error', fail)
    worker.on('exit', code => { if (this.worker === worker) fail(new Error(`exit ${code}`)) })
    worker.unref()
    this.worker = worker
    return worker
  }
}

let pool: SealPool | undefined

/** The process-wide seal pool, made on first use. */
export function sealPool (): SealPool {
  pool ??= new SealPool()
  return pool
}
