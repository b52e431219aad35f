/** The links of a block, by codec: what a DAG walk or a completeness check follows. */
import * as dagCbor from '@ipld/dag-cbor'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { CairnError } from '../errors.js'

export function linksOf (cid: CID, bytes: Uint8Array): CID[] {
  switch (cid.code) {
    case raw.code: return []
    case dagPb.code: {
      let node: dagPb.PBNode
      try {
        node = dagPb.decode(bytes)
      } catch (err) {
        throw new CairnError('ERR_DAG_INVALID', `block ${cid.toString()} is not valid dag-pb: ${(err as Error).message}`, { cause: err })
      }
      return node.Links.map(l => l.Hash)
    }
    case dagCbor.code: {
      let value: unknown
      try {
        value = dagCbor.decode(bytes)
      } catch (err) {
        throw new CairnError('ERR_DAG_INVALID', `block ${cid.toString()} is not valid dag-cbor: ${(err as Error).message}`, { cause: err })
      }
      const out: CID[] = []
      collect(value, out)
      return out
    }
    default:
      throw new CairnError('ERR_DAG_INVALID', `block ${cid.toString()} uses codec 0x${cid.code.toString(16)}, which cairn cannot walk (expected dag-pb, raw or dag-cbor)`)
  }
}

function collect (value: unknown, out: CID[]): void {
  const cid = CID.asCID(value)
  if (cid !== null) { out.push(cid); return }
  if (Array.isArray(value)) { for (const v of value) collect(v, out); return }
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    for (const v of Object.values(value)) collect(v, out)
  }
}
