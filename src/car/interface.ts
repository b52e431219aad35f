/** Types shared by the CAR writer, reader, verifier and index (CARv1 spec). */
import type { CID } from 'multiformats/cid'

export interface CarHeader {
  version: 1
  roots: CID[]
  /** bytes taken by the header, its varint prefix included: the offset of the first block frame */
  length: number
}

export interface CarBlock {
  cid: CID
  bytes: Uint8Array
  /** offset of the frame (its varint length prefix) in the CAR */
  offset: number
  /** offset of the block data (after the CID) in the CAR */
  blockOffset: number
  /** length of the block data */
  length: number
}

/** One row of a block index: where a block's data sits in a CAR. */
export interface BlockIndexEntry {
  cid: CID
  offset: number
  length: number
}

export interface ReadCarOptions {
  /** Refuse a CID seen twice (Filecoin-deterministic CARs have no duplicates). Default false. */
  unique?: boolean
  /** Accept a header with several roots. Default false: exactly one root. */
  allowMultipleRoots?: boolean
  /** Largest block accepted, in bytes. Default 2 MiB. */
  maxBlockSize?: number
  /** Called once, with the checked header, before the first block. */
  onHeader?: (header: CarHeader) => void
  /**
   * Yield the bytes of raw (0x55) sha2-256 blocks. Default true. False hashes
   * them where they lie in the input and yields them with empty `bytes` (CID,
   * offsets and length only): for callers that check a CAR without keeping its
   * leaves, it spares allocating and copying every leaf.
   */
  rawBytes?: boolean
  /**
   * With `rawBytes: false`: raw sha2-256 leaves are passed without hashing
   * (their CID is still read from the frame); every other block is still
   * hashed. For a holder streaming a CAR it verified when it stored it, as
   * kubo's blockstore does with `Datastore.HashOnRead` off: the client
   * verifies every block it receives.
   */
  trustRawLeaves?: boolean
  /**
   * Hashes 1…16 messages of one length at once, off the main thread (the
   * native addon's `sha256x16`). Given (and `rawBytes` not false), raw
   * sha2-256 leaves of 64 KiB or more are hashed in batches of up to 16 of
   * one length, a batch while the next is read; each leaf is still yielded
   * only once its digest matched, in order. Without it, every block is
   * hashed on the main thread as it is read.
   */
  hashMany?: (messages: Uint8Array[]) => Promise<Uint8Array>
  /**
   * With `hashMany`: a leaf lying end to end in one buffer of the input
   * (consecutive views of one slab) is yielded as a view of it, not copied.
   * For a caller whose input chunks are its own slabs, kept unchanged until
   * every leaf in them is verified (`passVerified` with `hashMany`).
   */
  leafViews?: boolean
}
