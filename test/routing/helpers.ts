/** Shared pieces of the content-routing tests: keys, multihashes, advertisements and their CARs. */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { encodeFramePrefix, encodeHeader } from '../../src/car/index.js'
import { sha256 } from '../../src/car/hash.js'
import type { Database } from '../../src/repo/repo.js'
import { generateSecretKey, identityFromSecret, type Identity } from '../../src/repo/identity.js'
import { encodeMetadata, entryChunks, signAdvertisement, TRANSPORT_IPFS_GATEWAY_HTTP, type Advertisement, type Block } from '../../src/routing/advertisement.js'

export const GATEWAY = encodeMetadata([TRANSPORT_IPFS_GATEWAY_HTTP])

export function newIdentity (): Identity {
  return identityFromSecret(generateSecretKey())
}

/** `n` random raw-leaf CIDs (sha2-256), as a DAG's blocks would be named. */
export function randomCids (n: number): CID[] {
  return Array.from({ length: n }, () => CID.createV1(0x55, createDigest(0x12, sha256(randomBytes(32)))))
}

export function dealIdBytes (): Uint8Array {
  return CID.createV1(0x71, createDigest(0x12, sha256(randomBytes(32)))).bytes
}

/** A CARv1 rooted at `root` holding `blocks`, as an announcer sends it. */
export function carOf (root: CID, blocks: Block[]): Uint8Array {
  const parts: Uint8Array[] = [encodeHeader([root])]
  for (const b of blocks) parts.push(encodeFramePrefix(b.cid, b.bytes.length), b.bytes)
  return Buffer.concat(parts)
}

export async function * chunked (bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes
}

export interface Made { cid: CID, car: Uint8Array, ad: Block, chunks: Block[] }

/** A signed advertisement from `signer` and its CAR; `add` multihashes under `context` (or withdraw it, or only addresses). */
export function advertisement (signer: Identity, previous: CID | null, change: { context?: Uint8Array, add?: Uint8Array[], remove?: boolean, addresses?: string[] } = {}): Made {
  const chunks = change.add === undefined ? [] : entryChunks(change.add)
  const fields: Omit<Advertisement, 'provider'> = {
    previous,
    addresses: change.addresses ?? ['/ip4/127.0.0.1/tcp/7470/http'],
    contextId: change.context ?? new Uint8Array(0),
    metadata: change.context === undefined ? new Uint8Array(0) : GATEWAY,
    entries: chunks[0]?.cid ?? null,
    isRm: change.remove === true,
    at: Date.now()
  }
  const { block } = signAdvertisement(signer, fields)
  return { cid: block.cid, ad: block, chunks, car: carOf(block.cid, [block, ...chunks]) }
}

/** A fresh LevelDB in a temporary directory. */
export async function tempDb (): Promise<{ db: Database, cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-routing-'))
  const db: Database = new Level<string, Uint8Array>(join(dir, 'db'), { valueEncoding: 'view' })
  await db.open()
  return { db, cleanup: async () => { await db.close(); await rm(dir, { recursive: true, force: true }) } }
}
