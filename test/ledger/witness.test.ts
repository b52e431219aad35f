/**
 * Witnessed heads (docs/ledger.md): every signed message between a client and
 * a provider carries its sender's ledger head and the receiver records it, so
 * either side can check the other's exported ledger still holds every head it
 * saw. A ledger cut short, or rewritten and re-signed throughout with the
 * node's own key (which its own `verify` cannot see), is caught by the other.
 */
import test from 'ava'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { auditDeal } from '../../src/client/audit.js'
import { checkWitnessed } from '../../src/ledger/witness.js'
import { world, type World } from '../audit/helpers.js'
import { cairn } from '../helpers/cli.js'
import { exportLines as lines, resigned } from './helpers.js'
import { rejectsCode } from '../helpers/errors.js'

/** Two deals and two audits between one client and one provider. */
async function dealt (): Promise<World> {
  const w = await world(1)
  const a = await w.deal(0)
  await w.deal(0)
  for (const period of [0, 1]) {
    const r = await auditDeal(w.ctx, a, { timeoutMs: 5000, period })
    if (r.outcome !== 'passed') throw new Error(`audit ${r.outcome}: ${r.message ?? ''}`)
  }
  return w
}

test('each side holds the other\'s heads, and the other\'s export still has every one', async (t) => {
  const w = await dealt()
  t.teardown(w.cleanup)
  const provider = w.providers[0]!
  const fromProvider = await checkWitnessed(w.client.ledger, await lines(provider.ledger))
  // two acceptances and two proofs
  t.like(fromProvider, { counterparty: provider.repo.identity.did, checked: 4 })
  const fromClient = await checkWitnessed(provider.ledger, await lines(w.client.ledger))
  // the second proposal (the first came from an empty ledger) and two proof requests
  t.like(fromClient, { counterparty: w.client.repo.identity.did, checked: 3 })
  const vias = new Set<string>()
  for await (const h of provider.ledger.witnessed()) vias.add(h.via)
  t.deepEqual([...vias].sort(), ['deal-accepted.proposal', 'proof-answered.request'])
  t.true((await provider.ledger.verify()).entries > 0)
  t.true((await w.client.ledger.verify()).entries > 0)
})

test('a ledger cut short is caught by the counterparty', async (t) => {
  const w = await dealt()
  t.teardown(w.cleanup)
  const provider = w.providers[0]!
  const all = await lines(provider.ledger)
  const err = await t.throwsAsync(checkWitnessed(w.client.ledger, all.slice(0, -1)))
  t.is((err as { code?: string }).code, 'ERR_LEDGER_REWRITTEN')
  t.regex(err!.message, /was cut short: its export ends at entry \d+, but this node saw its entry \d+/)
})

test('a ledger rewritten and re-signed with the node\'s own key is caught; the same entries re-signed are not', async (t) => {
  const w = await dealt()
  t.teardown(w.cleanup)
  const scratch = await mkdtemp(join(tmpdir(), 'cairn-forge-'))
  t.teardown(async () => await rm(scratch, { recursive: true, force: true }))
  const provider = w.providers[0]!
  const client = await lines(w.client.ledger)
  const faithful = await resigned(scratch, w.client.repo.identity, client, (_k, f) => f)
  t.deepEqual(faithful, client, 'the same entries at the same times give the same chain')
  t.like(await checkWitnessed(provider.ledger, faithful), { checked: 3 })
  // the client claims it paid the first period 1 base unit more
  let forgedOnce = false
  const forged = await resigned(scratch, w.client.repo.identity, client, (kind, f) => {
    if (kind !== 'payment-accrued' || forgedOnce) return f
    forgedOnce = true
    return { ...f, amount: BigInt(f.amount as number | bigint) + 1n }
  })
  t.true(forgedOnce)
  const err = await t.throwsAsync(checkWitnessed(provider.ledger, forged))
  t.is((err as { code?: string }).code, 'ERR_LEDGER_REWRITTEN')
  t.regex(err!.message, /was rewritten: its entry \d+ is now \S+, but this node saw its entry \d+ \(\S+\), signed into proof-answered\.request/)
  // its own export is not a counterparty's
  await rejectsCode(t, checkWitnessed(w.client.ledger, client), 'ERR_INVALID_ARGUMENT')
})

test('`cairn ledger verify --against`: exit 0 while the provider\'s export holds every head, 3 once it is cut short; `ledger witness` lists them', async (t) => {
  const w = await dealt()
  t.teardown(w.cleanup)
  const provider = w.providers[0]!
  const whole = join(w.dir, 'provider.ndjson')
  const cut = join(w.dir, 'provider-cut.ndjson')
  const all = await lines(provider.ledger)
  await writeFile(whole, all.join('\n') + '\n')
  await writeFile(cut, all.slice(0, -2).join('\n') + '\n')
  await w.client.repo.close()
  const repo = ['--repo', w.client.repo.path]
  const ok = await cairn([...repo, 'ledger', 'verify', '--against', whole])
  t.is(ok.code, 0, ok.stderr)
  t.regex(ok.stdout, /still holds all 4 of its heads this ledger witnessed/)
  const bad = await cairn([...repo, 'ledger', 'verify', '--against', cut])
  t.is(bad.code, 3, bad.stdout)
  t.regex(bad.stderr, /^error ERR_LEDGER_REWRITTEN: the ledger of did:key:\S+ was cut short/m)
  const listed = await cairn([...repo, '--json', 'ledger', 'witness'])
  t.is(listed.code, 0, listed.stderr)
  t.like(JSON.parse(listed.stdout), [{ counterparty: provider.repo.identity.did, heads: 4 }])
  const missing = await cairn([...repo, 'ledger', 'verify', '--against', join(w.dir, 'nope.ndjson')])
  t.is(missing.code, 4, missing.stderr)
})
