/**
 * A CAR file opened for random access: read through once to index it (every
 * block verified against its CID on the way), then read block by block by
 * CID, each block verified again whenever it is read, so nothing unverified
 * leaves it. Only where each block lies is kept in memory.
 */
import { createReadStream } from 'node:fs'
import { open } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import type { CID } from 'multiformats/cid'
import { IDENTITY, RAW } from '../codecs.js'
import { CairnError, fromSystemError } from '../errors.js'
import { cidKey, inlined, verifyBlock } from './hash.js'
import { linksOf } from './links.js'
import { readCar } from './reader.js'

export interface CarFile {
  readonly path: string
  readonly root: CID
  readonly blocks: number
  /** whether the CAR holds the block (identity CIDs hold themselves) */
  has: (cid: CID) => boolean
  /** reads a block by CID, verifying it again; ERR_CAR_BLOCK_MISSING when the CAR lacks it */
  get: (cid: CID) => Promise<Uint8Array>
  /**
   * where a block's bytes lie in the file (undefined when the CAR lacks it,
   * and for identity CIDs, which lie nowhere): for copying a block into
   * another CAR straight from this file, as the importer copies leaves
   */
  locate: (cid: CID) => { offset: number, length: number } | undefined
  close: () => Promise<void>
}

export interface OpenCarFileOptions {
  /**
   * Check that every block reachable from the root is in the CAR, before it
   * is returned. Default true; false for a CAR that holds a path's blocks only.
   */
  complete?: boolean
  /** Called with each block the completeness check decodes (every block but raw leaves), for checks of its own. */
  visit?: (cid: CID, bytes: Uint8Array) => void
}

/** Opens, indexes and verifies a CAR file: its header, every block's hash and (by default) the DAG's completeness. */
export async function openCarFile (path: string, options: OpenCarFileOptions = {}): Promise<CarFile> {
  let handle: FileHandle
  try {
    handle = await open(path, 'r')
  } catch (err) {
    throw fromSystemError(err, path)
  }
  try {
    let root: CID | undefined
    const index = new Map<string, { offset: number, length: number }>()
    const source = createReadStream(path, { fd: handle, autoClose: false, start: 0, highWaterMark: 1024 * 1024 }) as AsyncIterable<Uint8Array>
    // only where each block lies is kept here (every read verifies again), so leaves are hashed in place
    for await (const block of readCar(source, { onHeader: h => { root = h.roots[0] }, rawBytes: false })) {
      index.set(cidKey(block.cid), { offset: block.blockOffset, length: block.length })
    }
    if (root === undefined) throw new Error('internal: no header')
    const has = (cid: CID): boolean => cid.multihash.code === IDENTITY || index.has(cidKey(cid))
    const get = async (cid: CID): Promise<Uint8Array> => {
      const inline = inlined(cid)
      if (inline !== undefined) return inline
      const at = index.get(cidKey(cid))
      if (at === undefined) throw new CairnError('ERR_CAR_BLOCK_MISSING', `block ${cid.toString()} is not in ${path}`, { details: { cid: cid.toString() } })
      const bytes = new Uint8Array(at.length)
      let done = 0
      while (done < at.length) {
        const { bytesRead } = await handle.read(bytes, done, at.length - done, at.offset + done)
        if (bytesRead === 0) throw new CairnError('ERR_CAR_TRUNCATED', `${path} was truncated while being read`)
        done += bytesRead
      }
      verifyBlock(cid, bytes)
      return bytes
    }
    const locate = (cid: CID): { offset: number, length: number } | undefined => cid.multihash.code === IDENTITY ? undefined : index.get(cidKey(cid))
    const car: CarFile = { path, root, blocks: index.size, has, get, locate, close: async () => { await handle.close() } }
    if (options.complete !== false) await checkComplete(car, options.visit)
    return car
  } catch (err) {
    await handle.close()
    throw err
  }
}

/** Walks every block reachable from the root, before anything is read from the CAR. */
async function checkComplete (car: CarFile, visit: OpenCarFileOptions['visit']): Promise<void> {
  const seen = new Set<string>()
  const stack: CID[] = [car.root]
  while (stack.length > 0) {
    const cid = stack.pop() as CID
    if (cid.multihash.code === IDENTITY) continue
    const key = cidKey(cid)
    if (seen.has(key)) continue
    seen.add(key)
    if (!car.has(cid)) {
      if (cid.equals(car.root)) throw new CairnError('ERR_CAR_ROOT_MISSING', `the root ${cid.toString()} is not in ${car.path}`)
      throw new CairnError('ERR_CAR_BLOCK_MISSING', `block ${cid.toString()} is linked but not in ${car.path}`, { details: { cid: cid.toString() } })
    }
    if (cid.code === RAW) continue
    const bytes = await car.get(cid)
    visit?.(cid, bytes)
    stack.push(...linksOf(cid, bytes))
  }
}
