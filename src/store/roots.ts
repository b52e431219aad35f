/**
 * Which piece in the store holds the DAG of a root CID: the local side of
 * `cairn ls <cid>` and `cairn get <cid>`.
 */
import type { Database } from '../repo/repo.js'

export interface RootRecord {
  piece: string
  pieceV1: string
  payloadSize: number
  paddedSize: string
  added: string
  /** the age recipients an encrypted root was made for (`add --encrypt`): a distinct replica is encrypted to them too */
  recipients?: string[]
  /** the root this one is a distinct replica of (`deal --distinct`, docs/encryption.md "Distinct replicas") */
  replicaOf?: string
}

const PREFIX = 'roots!'
const encoder = new TextEncoder()
const decoder = new TextDecoder()

export async function recordRoot (db: Database, root: string, record: RootRecord): Promise<void> {
  await db.put(PREFIX + root, encoder.encode(JSON.stringify(record)), { sync: true })
}

export async function findRoot (db: Database, root: string): Promise<RootRecord | undefined> {
  const value = await db.get(PREFIX + root)
  return value === undefined ? undefined : JSON.parse(decoder.decode(value)) as RootRecord
}
