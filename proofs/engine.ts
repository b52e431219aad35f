/**
 * Subtree engines: the hot loop of CommP. An engine turns a run of whole
 * quads (a power of two of them, aligned in the piece) into the root of their
 * Fr32 subtree. The streaming hasher (commp.ts) only combines those roots.
 */
import { padQuads } from './fr32.js'
import { subtreeRootInPlace } from './node-hash.js'

export interface SubtreeEngine {
  /** 'portable' (JS on the calling thread), 'workers' (JS on worker threads) or 'native' (C addon) */
  readonly name: string
  /**
   * Root of the Fr32 subtree over `quads` quads of `src` from `offset`;
   * `quads` is a power of two. Synchronous, on the calling thread.
   */
  rootSync: (src: Uint8Array, offset: number, quads: number) => Uint8Array
  /**
   * Same, off the calling thread. The engine owns `chunk` until the promise
   * settles; when present the hasher keeps several chunks in flight.
   */
  root?: (chunk: Uint8Array, quads: number) => Promise<Uint8Array>
  /**
   * Roots of each run of `region` quads in `chunk`, concatenated (a tree
   * layer), off the calling thread in one job.
   */
  layer?: (chunk: Uint8Array, quads: number, region: number) => Promise<Uint8Array>
  /** allocates a chunk buffer the engine can use without copying (e.g. shared memory) */
  allocChunk?: (size: number) => Uint8Array
  /** chunks the engine can usefully hash at once */
  readonly parallelism: number
}

/** Quads per streaming chunk: 8192 × 127 B ≈ 0.99 MiB in, 1 MiB of Fr32 out, a subtree of height 15. */
export const CHUNK_QUADS = 8192
export const CHUNK_BYTES = CHUNK_QUADS * 127
export const CHUNK_LEVEL = 15

let scratch: Uint8Array | undefined

/** Fr32 padding and hashing in JavaScript on the calling thread. */
export function portableRootSync (src: Uint8Array, offset: number, quads: number): Uint8Array {
  const bytes = quads * 128
  if (scratch === undefined || scratch.length < bytes) scratch = new Uint8Array(Math.max(bytes, CHUNK_QUADS * 128))
  padQuads(src, offset, quads, scratch, 0)
  return subtreeRootInPlace(scratch, quads * 4)
}

export const portableEngine: SubtreeEngine = {
  name: 'portable',
  rootSync: portableRootSync,
  parallelism: 1
}
