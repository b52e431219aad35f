/**
 * The block CIDs of a CARv1 file listed with positional reads: each frame's
 * length prefix and CID are read and its block bytes skipped, so listing a
 * 32 GiB piece costs a few thousand small reads instead of reading it whole
 * (the provider uses it to unindex a piece whose deal ended). The file is one
 * the provider checked when it was stored; anything that does not parse ends
 * the listing with ERR_CAR_TRUNCATED.
 */
import { open } from 'node:fs/promises'
import { varint } from 'multiformats'
import { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'

/** Enough for a frame's length varint and any CID cairn stores. */
const PREFIX_BYTES = 160

export async function carBlockCids (path: string): Promise<CID[]> {
  const handle = await open(path, 'r')
  try {
    const { size } = await handle.stat()
    const buffer = new Uint8Array(PREFIX_BYTES)
    const read = async (offset: number): Promise<Uint8Array> => {
      const { bytesRead } = await handle.read(buffer, 0, PREFIX_BYTES, offset)
      return buffer.subarray(0, bytesRead)
    }
    const truncated = (offset: number, why: string): CairnError => new CairnError('ERR_CAR_TRUNCATED', `${path}: ${why} at byte ${offset}`)
    const head = await read(0)
    let headerLength: number, headerPrefix: number
    try {
      [headerLength, headerPrefix] = varint.decode(head)
    } catch {
      throw truncated(0, 'no header length')
    }
    let offset = headerPrefix + headerLength
    const cids: CID[] = []
    while (offset < size) {
      const frame = await read(offset)
      let length: number, prefix: number
      try {
        [length, prefix] = varint.decode(frame)
      } catch {
        throw truncated(offset, 'no frame length')
      }
      let cid: CID
      try {
        [cid] = CID.decodeFirst(frame.subarray(prefix))
      } catch {
        throw truncated(offset, 'no CID')
      }
      if (length < cid.bytes.length || offset + prefix + length > size) throw truncated(offset, `a frame of ${length} bytes`)
      cids.push(cid)
      offset += prefix + length
    }
    return cids
  } finally {
    await handle.close()
  }
}
