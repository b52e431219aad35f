/**
 * Ledger throughput (docs/performance.md: ≥ 1,000 synced entries/s appended, `ledger
 * verify` ≥ 20,000 entries/s). Appends come from many concurrent callers, as
 * deal events do on a busy provider, so waiting appends share one fsync
 * (group commit); every batch is written with `sync: true`.
 *
 *   node dist/bench/ledger.js [entries]
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Level } from 'level'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { DAG_CBOR, SHA2_256 } from '../src/codecs.js'
import { createSigner } from '../src/protocol/signing.js'
import { LevelLedger } from '../src/ledger/level.js'
import type { EntryFields, EntryKind } from '../src/ledger/interface.js'
import type { Database } from '../src/repo/repo.js'

/** Appends in flight at once. */
const CONCURRENCY = 256

export interface LedgerBench {
  appendPerSec: number
  verifyPerSec: number
  /** entries verified per second of this process's CPU time: the figure on an unshared core */
  verifyPerCpuSecond: number
  /** `ledger verify --all-signatures`: every Ed25519 signature on its own */
  verifyAllSignaturesPerSec: number
  /** one caller awaiting each append: one fsync per entry */
  sequentialAppendPerSec: number
}

export async function benchLedger (dir: string, n: number): Promise<LedgerBench> {
  const db: Database = new Level<string, Uint8Array>(join(dir, 'ledger-bench-db'), { valueEncoding: 'view' })
  await db.open()
  try {
    const signer = createSigner(randomBytes(32))
    const provider = createSigner(randomBytes(32)).did
    const ledger = await LevelLedger.open(db, signer)
    const events = workload(signer.did, provider)

    let started = performance.now()
    for (let done = 0; done < n;) {
      const batch: Array<Promise<unknown>> = []
      for (; batch.length < CONCURRENCY && done < n; done++) {
        const [kind, fields] = events.next().value as [EntryKind, EntryFields]
        batch.push(ledger.append(kind, fields))
      }
      await Promise.all(batch)
    }
    const appendPerSec = n / ((performance.now() - started) / 1000)

    const sequential = Math.min(200, n)
    started = performance.now()
    for (let i = 0; i < sequential; i++) {
      const [kind, fields] = events.next().value as [EntryKind, EntryFields]
      await ledger.append(kind, fields)
    }
    const sequentialAppendPerSec = sequential / ((performance.now() - started) / 1000)
    const total = n + sequential

    started = performance.now()
    const cpu = process.cpuUsage()
    const report = await ledger.verify()
    const verifyPerSec = report.entries / ((performance.now() - started) / 1000)
    const used = process.cpuUsage(cpu)
    const verifyPerCpuSecond = report.entries / ((used.user + used.system) / 1e6)
    if (report.entries !== total) throw new Error(`verified ${report.entries} entries, expected ${total}`)

    started = performance.now()
    await ledger.verify({ signatures: 'all' })
    const verifyAllSignaturesPerSec = total / ((performance.now() - started) / 1000)

    return { appendPerSec, verifyPerSec, verifyPerCpuSecond, verifyAllSignaturesPerSec, sequentialAppendPerSec }
  } finally {
    await db.close()
  }
}

/** Deal lives as a provider records them: proposed, accepted, active, then challenges, proofs and payments. */
function * workload (self: string, provider: string): Generator<[EntryKind, EntryFields]> {
  const live: CID[] = []
  for (let i = 0; ; i++) {
    if (live.length < 64 || i % 8 === 0) {
      const digest = randomBytes(32)
      const deal = CID.createV1(DAG_CBOR, createDigest(SHA2_256, new Uint8Array(digest.buffer, digest.byteOffset, 32)))
      yield ['deal-proposed', { deal, provider, client: self, nonce: BigInt(i), pieceSize: 1n << 30n }]
      yield ['deal-accepted', { deal }]
      yield ['deal-active', { deal }]
      live.push(deal)
      continue
    }
    const deal = live[i % live.length]
    yield ['challenge-issued', { deal, provider, seed: randomBytes(32) }]
    yield ['proof-passed', { deal, provider, challenges: 16 }]
    yield ['payment-accrued', { deal, from: self, to: provider, amount: 40n }]
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const n = Number(process.argv[2] ?? 20_000)
  const dir = await mkdtemp(join(tmpdir(), 'cairn-bench-ledger-'))
  try {
    const r = await benchLedger(dir, n)
    console.log(`ledger, ${n} entries: append ${r.appendPerSec.toFixed(0)}/s synced (target ≥ 1,000; one caller at a time ${r.sequentialAppendPerSec.toFixed(0)}/s), ` +
      `verify ${r.verifyPerSec.toFixed(0)}/s, ${r.verifyPerCpuSecond.toFixed(0)} per CPU-second (target ≥ 20,000; every signature on its own ${r.verifyAllSignaturesPerSec.toFixed(0)}/s)`)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
