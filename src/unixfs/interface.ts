/** Types shared by the UnixFS readers: the resolver, `ls`, `unpack`, `get` and the gateway. */
import type { CID } from 'multiformats/cid'

export interface Block {
  cid: CID
  bytes: Uint8Array
}

/**
 * Gets a block's bytes, verified against its CID, identity CIDs included;
 * throws a coded error when it cannot (each source says why in its terms).
 */
export type Load = (cid: CID) => Promise<Uint8Array>

/** A byte range of a file: inclusive, within [0, size). */
export interface ByteRange {
  from: number
  to: number
}

export type EntryType = 'file' | 'directory' | 'symlink'

export interface Entry {
  cid: CID
  /** the root CID, then `/`-separated names below it */
  path: string
  /** content bytes for a file, target bytes for a symlink, 0 for a directory */
  size: number
  type: EntryType
}

export interface UnpackResult {
  root: CID
  output: string
  files: number
  directories: number
  symlinks: number
  bytes: number
}
