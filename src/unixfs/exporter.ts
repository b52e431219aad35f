/**
 * Reading UnixFS back out of a CAR file on disk: `ls` lists the entries,
 * `unpack` writes them. The CAR is indexed once (every block verified
 * against its CID), the DAG is checked complete from the root and its names
 * safe before anything is listed or written, and each block is verified
 * again whenever it is read, so nothing unverified reaches a user.
 *
 * Works with any block order (ipfs-car writes leaves before their parents),
 * CIDv0 and v1, raw and dag-pb leaves, HAMT-sharded directories and symlinks.
 */
import type { CID } from 'multiformats/cid'
import { openCarFile, type CarFile } from '../car/index.js'
import { DAG_PB } from '../codecs.js'
import { shardLinks } from './hamt.js'
import type { Entry, UnpackResult } from './interface.js'
import { checkDirectoryNames, checkName, decodeNode } from './node.js'
import { list } from './reader.js'
import { pathExists, targetExists, TreeWriter, type TreeReading } from './writer.js'

export type { Entry, EntryType, UnpackResult } from './interface.js'

/** Every entry under the root, depth first, the root first. */
export async function * ls (car: CarFile): AsyncGenerator<Entry> {
  yield * list(car.get, car.root, car.root.toString())
}

/** Lists a CAR file (see `ls`), verifying it first. */
export async function * lsCarFile (path: string): AsyncGenerator<Entry> {
  const car = await openCarFile(path)
  try {
    yield * ls(car)
  } finally {
    await car.close()
  }
}

/** Refuses directory entry names that could escape a target directory, as the completeness check meets each node. */
function checkNames (cid: CID, bytes: Uint8Array): void {
  if (cid.code !== DAG_PB) return
  const node = decodeNode(cid, bytes)
  if (node.type === 'directory') checkDirectoryNames(node)
  if (node.type === 'hamt-sharded-directory') {
    for (const link of shardLinks(node)) if ('name' in link) checkName(link.name, cid)
  }
}

export interface UnpackOptions {
  force?: boolean
  /**
   * How the tree reads, chosen once the CAR is verified (an encrypted tree
   * is decrypted, crypto/unpack.ts); UnixFS as stored when it gives nothing.
   */
  readAs?: (car: CarFile) => Promise<TreeReading | undefined>
}

/**
 * Verifies a CAR file and writes its root entry at `output`: a file, a
 * directory tree or a symlink. Nothing is written until the whole DAG is
 * verified; the tree is written into a temporary sibling of `output` and
 * renamed into place, so a failure leaves nothing behind.
 */
export async function unpack (carPath: string, output: string, options: UnpackOptions = {}): Promise<UnpackResult> {
  if (options.force !== true && await pathExists(output)) throw targetExists(output)
  const car = await openCarFile(carPath, { visit: checkNames })
  try {
    const reading = await options.readAs?.(car)
    const writer = await TreeWriter.create(output, car.root)
    try {
      await writer.write(car.get, { reading })
      return await writer.commit(options)
    } catch (err) {
      await writer.discard()
      throw err
    }
  } finally {
    await car.close()
  }
}
