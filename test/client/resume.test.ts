/**
 * An interrupted deal is taken on with `cairn deal --resume <id>` from where
 * it stopped (proposal not sent, sent but its answer lost, accepted but not
 * uploaded), and a deal not yet active is cancelled with `cairn deals cancel
 * <id>`: the provider is told with a client-signed message and frees its
 * reservation.
 */
import test from 'ava'
import { join } from 'node:path'
import * as dagJSON from '@ipld/dag-json'
import { addToRepo } from '../../src/client/content.js'
import { cancelDeal, makeDeal, resumeDeal } from '../../src/client/deal.js'
import { signCancellation } from '../../src/protocol/cancel.js'
import { parseDealId } from '../../src/protocol/proposal.js'
import { generateSecretKey, identityFromSecret } from '../../src/repo/identity.js'
import { cairn } from '../helpers/cli.js'
import { sampleTree, world, type World } from './helpers.js'
import { rejectsCode } from '../helpers/errors.js'

class Interrupt extends Error {}

/** A deal stopped right after `phase` (as by Ctrl-C there): its id. */
async function interrupted (w: World, root: string, phase: 'proposed' | 'accepted'): Promise<string> {
  let id: string | undefined
  await makeDeal({
    repo: w.client.repo,
    ledger: w.client.ledger,
    onProgress: (_url, p) => { if (p.phase === phase) throw new Interrupt(phase) }
  }, root, w.provider.url, { duration: 10 * 86400 }).catch((err) => { if (!(err instanceof Interrupt)) throw err })
  for await (const e of w.client.ledger.log({ kind: 'deal-proposed', limit: 1 })) id = String(e.fields.deal)
  if (id === undefined) throw new Error('no deal was proposed')
  return id
}

async function content (w: World): Promise<string> {
  return (await addToRepo(w.client.repo, [await sampleTree(join(w.dir, `sample-${Math.random()}`), 3000)])).root
}

const ctx = (w: World): Parameters<typeof resumeDeal>[0] => ({ repo: w.client.repo, ledger: w.client.ledger, pollIntervalMs: 20 })

test('resume: a proposal never sent is sent, uploaded and active; the same deal id', async (t) => {
  const w = await world()
  t.teardown(w.cleanup)
  const id = await interrupted(w, await content(w), 'proposed')
  t.is((await w.client.ledger.deal(id))?.state, 'proposed')
  t.is(await w.provider.ledger.deal(id), undefined)
  const result = await resumeDeal(ctx(w), id)
  t.is(result.id, id)
  t.is((await w.client.ledger.deal(id))?.state, 'active')
  t.is((await w.provider.ledger.deal(id))?.state, 'active')
})

test('resume: a proposal the provider accepted but whose answer was lost, and an accepted deal never uploaded', async (t) => {
  const w = await world()
  t.teardown(w.cleanup)
  const lost = await interrupted(w, await content(w), 'proposed')
  // the proposal arrived; its answer did not
  let stored: unknown
  for await (const e of w.client.ledger.log({ deal: lost, kind: 'deal-proposed' })) stored = e.fields.proposal
  t.is((await fetch(`${w.provider.url}/v1/deals`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: dagJSON.stringify(stored) })).status, 201)
  await resumeDeal(ctx(w), lost)
  t.is((await w.client.ledger.deal(lost))?.state, 'active')
  const accepted = await interrupted(w, await content(w), 'accepted')
  t.is((await w.provider.ledger.deal(accepted))?.state, 'accepted')
  await resumeDeal(ctx(w), accepted)
  t.is((await w.provider.ledger.deal(accepted))?.state, 'active')
  t.is((await w.client.ledger.deal(accepted))?.state, 'active')
  // resuming an active deal changes nothing; a deal that cannot be resumed says so
  const entries = w.client.ledger.head()?.seq
  t.is((await resumeDeal(ctx(w), accepted)).id, accepted)
  t.is(w.client.ledger.head()?.seq, entries)
  await rejectsCode(t, resumeDeal(ctx(w), 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'), 'ERR_DEAL_NOT_FOUND')
  t.true((await w.client.ledger.verify()).entries > 0)
})

test('cancel: the provider frees the reservation on the client\'s signed word; a proposal never sent is cancelled here only', async (t) => {
  const w = await world()
  t.teardown(w.cleanup)
  const id = await interrupted(w, await content(w), 'accepted')
  const reserved = (await w.provider.ledger.stats()).reserved
  t.true(reserved > 0n)
  // someone else's cancellation is refused
  const stranger = signCancellation(identityFromSecret(generateSecretKey()), { dealId: parseDealId(id), at: Math.floor(Date.now() / 1000), head: null })
  const refused = await fetch(`${w.provider.url}/v1/deals/${id}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: dagJSON.stringify(stranger) })
  t.is(refused.status, 401)
  t.is(((await refused.json()) as { error: { code: string } }).error.code, 'ERR_UNAUTHORIZED')
  t.deepEqual(await cancelDeal({ repo: w.client.repo, ledger: w.client.ledger }, id), { id, provider: w.provider.repo.identity.did, told: true })
  t.is((await w.client.ledger.deal(id))?.state, 'terminated')
  t.is((await w.provider.ledger.deal(id))?.state, 'terminated')
  t.like(await w.provider.ledger.stats(), { reserved: 0n, deals: { terminated: 1 } })
  await rejectsCode(t, resumeDeal(ctx(w), id), 'ERR_DEAL_STATE')
  // the provider witnessed the client's head in the cancellation
  const vias: string[] = []
  for await (const h of w.provider.ledger.witnessed()) vias.push(h.via)
  t.true(vias.includes('deal-terminated.cancel'))
  const unsent = await interrupted(w, await content(w), 'proposed')
  t.like(await cancelDeal({ repo: w.client.repo, ledger: w.client.ledger }, unsent), { told: false })
  t.is((await w.client.ledger.deal(unsent))?.state, 'terminated')
})

test('cancel: an active deal cannot be cancelled (ERR_DEAL_STATE), at either end', async (t) => {
  const w = await world()
  t.teardown(w.cleanup)
  const made = await makeDeal({ repo: w.client.repo, ledger: w.client.ledger }, await content(w), w.provider.url, { duration: 10 * 86400 })
  await rejectsCode(t, cancelDeal({ repo: w.client.repo, ledger: w.client.ledger }, made.id), 'ERR_DEAL_STATE')
  const signed = signCancellation(w.client.repo.identity, { dealId: parseDealId(made.id), at: Math.floor(Date.now() / 1000), head: null })
  const res = await fetch(`${w.provider.url}/v1/deals/${made.id}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: dagJSON.stringify(signed) })
  t.is(((await res.json()) as { error: { code: string } }).error.code, 'ERR_DEAL_STATE')
  t.is((await w.provider.ledger.deal(made.id))?.state, 'active')
})

test('CLI: `cairn deal --resume <id>` and `cairn deals cancel <id>`', async (t) => {
  const w = await world()
  t.teardown(w.cleanup)
  const a = await interrupted(w, await content(w), 'accepted')
  const b = await interrupted(w, await content(w), 'accepted')
  const repo = w.client.repo.path
  await w.client.repo.close()
  const resumed = await cairn(['deal', '--resume', a, '--repo', repo, '--json'])
  t.is(resumed.code, 0, resumed.stderr)
  t.like(JSON.parse(resumed.stdout), { id: a, state: 'active' })
  const cancelled = await cairn(['deals', 'cancel', b, '--repo', repo])
  t.is(cancelled.code, 0, cancelled.stderr)
  t.regex(cancelled.stdout, /cancelled; its provider .* freed the reservation/)
  const again = await cairn(['deals', 'cancel', b, '--repo', repo])
  t.is(again.code, 5)
  t.regex(again.stderr, /ERR_DEAL_STATE/)
  const both = await cairn(['deal', 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', '--resume', a, '--repo', repo])
  t.is(both.code, 2)
  // --resume goes to one node of the deal's provider, never to several
  const two = await cairn(['deal', '--resume', a, '--provider', w.provider.url, '--provider', w.provider.url, '--repo', repo])
  t.is(two.code, 2)
  t.regex(two.stderr, /^error ERR_USAGE: --resume takes at most one --provider/m)
})
