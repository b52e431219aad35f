import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { createSigner, type Signer } from '../../src/protocol/signing.js'
import { LevelLedger } from '../../src/ledger/level.js'
import type { Database } from '../../src/repo/repo.js'
import * as dagJson from '@ipld/dag-json'
import { decodeRecord } from '../../src/ledger/entry.js'
import type { Ledger } from '../../src/ledger/interface.js'

export interface Fixture {
  dir: string
  db: Database
  signer: Signer
  ledger: LevelLedger
  reopen (): Promise<LevelLedger>
  cleanup (): Promise<void>
}

export async function openLedger (): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-ledger-'))
  const db: Database = new Level<string, Uint8Array>(join(dir, 'db'), { valueEncoding: 'view' })
  await db.open()
  const signer = createSigner(randomBytes(32))
  let clock = 1_750_000_000_000
  const now = (): number => clock++
  const fixture: Fixture = {
    dir,
    db,
    signer,
    ledger: await LevelLedger.open(db, signer, { now }),
    async reopen () {
      fixture.ledger = await LevelLedger.open(db, signer, { now })
      return fixture.ledger
    },
    async cleanup () {
      await db.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
  return fixture
}

/** A made-up deal id (dag-cbor, sha2-256). */
export function dealId (n: number): CID {
  const digest = new Uint8Array(32)
  new DataView(digest.buffer).setUint32(0, n)
  return CID.createV1(0x71, createDigest(0x12, digest))
}

export const provider = createSigner(new Uint8Array(32).fill(1)).did
export const other = createSigner(new Uint8Array(32).fill(2)).did

export async function exportLines (ledger: Ledger): Promise<string[]> {
  const out: string[] = []
  for await (const line of ledger.export()) out.push(line)
  return out
}

/**
 * The same ledger written again with the node's own key, entry for entry and
 * at the same times, with `change` applied to the fields of each entry: a
 * chain that verifies on its own.
 */
export async function resigned (dir: string, signer: Signer, original: string[], change: (kind: string, fields: Record<string, unknown>) => Record<string, unknown>): Promise<string[]> {
  const db: Database = new Level<string, Uint8Array>(join(dir, `forged-${Math.random()}`), { valueEncoding: 'view' })
  await db.open()
  try {
    const entries = original.map(line => decodeRecord((dagJson.parse(line) as { record: Uint8Array }).record))
    let next = 0
    const forged = await LevelLedger.open(db, signer, { now: () => entries[next]!.at })
    for (; next < entries.length; next++) {
      const e = entries[next]!
      await forged.append(e.kind, change(e.kind, e.fields))
    }
    await forged.verify()
    return await exportLines(forged)
  } finally {
    await db.close()
  }
}
