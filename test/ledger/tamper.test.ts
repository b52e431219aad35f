/**
 * Tamper evidence: whatever byte of whatever stored record changes, and
 * whichever entry disappears, `verify` fails with ERR_LEDGER_BROKEN naming
 * the entry; a process killed mid-append leaves a ledger that verifies.
 */
import test from 'ava'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Level } from 'level'
import { createSigner } from '../../src/protocol/signing.js'
import { seqKey } from '../../src/ledger/entry.js'
import { LevelLedger } from '../../src/ledger/level.js'
import type { Database } from '../../src/repo/repo.js'
import { dealId, openLedger, provider, type Fixture } from './helpers.js'

const COUNT = 12

async function filled (): Promise<Fixture> {
  const f = await openLedger()
  const me = f.signer.did
  for (let i = 1; i <= COUNT / 3; i++) {
    await f.ledger.append('deal-proposed', { deal: dealId(i), provider, label: `deal ${i}` })
    await f.ledger.append('deal-accepted', { deal: dealId(i) })
    await f.ledger.append('payment-accrued', { deal: dealId(i), from: me, to: provider, amount: BigInt(i) * 1000n })
  }
  return f
}

function entries (db: Database) {
  return db.sublevel<string, Uint8Array>(['ledger', 'entries'], { valueEncoding: 'view' })
}

async function expectBroken (t: import('ava').ExecutionContext, ledger: LevelLedger, seq: number, what: string): Promise<void> {
  for (const signatures of ['chain', 'all'] as const) {
    const err = await t.throwsAsync(ledger.verify({ signatures }), undefined, `${what} (${signatures})`)
    t.is((err as { code?: string }).code, 'ERR_LEDGER_BROKEN', what)
    t.is((err as { details?: { seq?: number } }).details?.seq, seq, `${what}: ${err?.message}`)
    t.regex(err!.message, new RegExp(`^ledger entry ${seq} `))
  }
}

test('flipping any byte of a stored record breaks verification at that entry', async t => {
  const f = await filled()
  t.teardown(f.cleanup)
  const store = entries(f.db)
  for (const seq of [1, 5, COUNT]) {
    const original = Uint8Array.from((await store.get(seqKey(seq)))!)
    for (let i = 0; i < original.length; i++) {
      const altered = Uint8Array.from(original)
      altered[i] ^= 1 << (i % 8)
      await store.put(seqKey(seq), altered)
      const ledger = await f.reopen()
      await expectBroken(t, ledger, seq, `entry ${seq} byte ${i}`)
    }
    await store.put(seqKey(seq), original)
  }
  t.is((await (await f.reopen()).verify()).entries, COUNT)
})

test('deleting an entry in the middle is caught, naming the missing entry', async t => {
  const f = await filled()
  t.teardown(f.cleanup)
  await entries(f.db).del(seqKey(6))
  await expectBroken(t, await f.reopen(), 6, 'deleted entry 6')
})

test('swapping two entries is caught', async t => {
  const f = await filled()
  t.teardown(f.cleanup)
  const store = entries(f.db)
  const [a, b] = [(await store.get(seqKey(3)))!, (await store.get(seqKey(4)))!]
  await store.put(seqKey(3), b)
  await store.put(seqKey(4), a)
  const err = await t.throwsAsync((await f.reopen()).verify())
  t.is((err as { code?: string }).code, 'ERR_LEDGER_BROKEN')
  t.is((err as { details?: { seq?: number } }).details?.seq, 3)
})

test('a record replaced by a valid record of another ledger is caught', async t => {
  const f = await filled()
  t.teardown(f.cleanup)
  const g = await filled()
  t.teardown(g.cleanup)
  await entries(f.db).put(seqKey(COUNT), (await entries(g.db).get(seqKey(COUNT)))!)
  await expectBroken(t, await f.reopen(), COUNT, 'foreign record')
})

test('a verifyEntry hook failing names the entry', async t => {
  const f = await filled()
  t.teardown(f.cleanup)
  const err = await t.throwsAsync(f.ledger.verify({ verifyEntry: (e) => { if (e.kind === 'payment-accrued' && e.seq > 6) throw new Error('proof does not verify') } }))
  t.is((err as { code?: string }).code, 'ERR_LEDGER_BROKEN')
  t.regex(err!.message, /^ledger entry 9 \(bafy\w+\) fails its check: proof does not verify$/)
})

test('a process killed while appending leaves a ledger that verifies, with its indexes in step', async t => {
  const f = await openLedger()
  await f.db.close()
  t.teardown(f.cleanup)
  const script = fileURLToPath(new URL('./append-forever.js', import.meta.url))
  const secret = Buffer.alloc(32, 5).toString('hex')
  const child = spawn(process.execPath, [script, f.dir, secret], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve) => {
    let seen = 0
    child.stdout.on('data', (chunk: Buffer) => {
      seen += chunk.toString().split('\n').length - 1
      if (seen >= 3) { child.kill('SIGKILL'); resolve() }
    })
  })
  await new Promise(resolve => child.once('exit', resolve))
  const db: Database = new Level<string, Uint8Array>(`${f.dir}/db`, { valueEncoding: 'view' })
  await db.open()
  t.teardown(() => db.close())
  const ledger = await LevelLedger.open(db, createSigner(Buffer.from(secret, 'hex')))
  const report = await ledger.verify({ signatures: 'all' })
  t.true(report.entries > 0)
  // every committed payment is in the balance, and nothing else is
  let total = 0n
  for await (const entry of ledger.log({ kind: 'payment-accrued' })) total += BigInt(entry.fields.amount as number)
  const [balance] = await ledger.balance()
  t.is(balance.paid, total)
  t.is((await ledger.append('deal-proposed', { deal: dealId(10 ** 6) })).seq, report.entries + 1)
})
