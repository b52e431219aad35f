/** Child process for the crash test: appends in concurrent bursts until killed. */
import { Level } from 'level'
import { createSigner } from '../../src/protocol/signing.js'
import { LevelLedger } from '../../src/ledger/level.js'
import type { Database } from '../../src/repo/repo.js'
import { dealId, provider } from './helpers.js'

const [dir, secret] = process.argv.slice(2)
const db: Database = new Level<string, Uint8Array>(`${dir}/db`, { valueEncoding: 'view' })
await db.open()
const signer = createSigner(Buffer.from(secret, 'hex'))
const ledger = await LevelLedger.open(db, signer)
for (let round = 0; ; round++) {
  await Promise.all(Array.from({ length: 50 }, async (_, i) => {
    const deal = dealId(round * 50 + i)
    await ledger.append('deal-proposed', { deal, provider })
    await ledger.append('payment-accrued', { deal, from: signer.did, to: provider, amount: BigInt(i + 1) })
  }))
  process.stdout.write(`${round}\n`)
}
