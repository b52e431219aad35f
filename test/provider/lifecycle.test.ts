/**
 * Deals end (docs/protocol.md "Deal lifecycle"), on a real repo and a clock
 * the test moves: an accepted deal not uploaded by its deadline (the upload
 * window, never past its start) expires and frees its reservation; a deal
 * past its end stops being served (unless another active deal holds the same
 * piece) and its piece file goes after the retention grace; a proposal that
 * starts too far ahead is refused; the schedule is worked a bounded batch at a
 * time and caught up after a restart. A piece in its grace survives a restart,
 * and the PDP piece store (docs/pdp.md) and the deal pieces never touch each
 * other's files.
 */
import test from 'ava'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { startProviderNode, type ProviderNode } from '../../src/provider/node.js'
import { uploadAuthorization } from '../../src/protocol/auth.js'
import { Repo } from '../../src/repo/repo.js'
import { cairn } from '../helpers/cli.js'
import { errorCode, makeDeal, newClient, payload, proofRequestBody, uploadPiece, type Payload } from '../hardening/helpers.js'
import { testTerms } from './fixtures.js'

const START = Math.floor(Date.now() / 1000)

interface World {
  dir: string
  repo: Repo
  provider: ProviderNode
  client: ReturnType<typeof newClient>
  clock: { now: number }
  /** what the node logged */
  logs: Array<{ event: string, fields: Record<string, unknown> }>
  restart: () => Promise<void>
  close: () => Promise<void>
}

async function world (terms: Parameters<typeof testTerms>[0] = {}, batch?: number): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-lifecycle-'))
  const clock = { now: START }
  const logs: World['logs'] = []
  let repo = await Repo.init(join(dir, 'repo'))
  const start = async (): Promise<ProviderNode> => await startProviderNode(repo, testTerms({ capacity: 1n << 20n, uploadWindow: 3600, retentionGrace: 86400, ...terms }), {
    now: () => clock.now,
    log: (event, fields = {}) => { logs.push({ event, fields }) },
    // as `provider start` does
    recover: true,
    pdp: { now: () => clock.now },
    // ticked by the test
    lifecycle: { tickMs: 3_600_000, batch }
  })
  const w: World = {
    dir,
    repo,
    provider: await start(),
    client: newClient(),
    clock,
    logs,
    restart: async () => {
      await w.provider.close()
      await repo.close()
      repo = await Repo.open(join(dir, 'repo'))
      w.repo = repo
      w.provider = await start()
    },
    close: async () => {
      await w.provider.close()
      await repo.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
  return w
}

async function deal (w: World, p: Payload, nonce: bigint, start: number, end = start + 86400): Promise<string> {
  return await makeDeal(w.provider.url, w.client, w.repo.identity.did, p, nonce, { start, end, provingPeriod: 3600 })
}

async function served (w: World, p: Payload): Promise<{ raw: number, piece: number }> {
  const raw = await fetch(`${w.provider.url}/ipfs/${p.root.toString()}?format=raw`, { headers: { accept: 'application/vnd.ipld.raw' } })
  const piece = await fetch(`${w.provider.url}/piece/${p.pieceCid.toString()}`)
  await raw.arrayBuffer()
  await piece.arrayBuffer()
  return { raw: raw.status, piece: piece.status }
}

test('an accepted deal not uploaded by its start expires and frees its reservation; an upload after the deadline is refused', async (t) => {
  const w = await world()
  t.teardown(w.close)
  const p = await payload(1)
  const id = await deal(w, p, 1n, START + 600)
  const record = await w.provider.ledger.deal(id)
  t.is(record?.uploadBy, START + 600, 'the deadline is the start, within the hour window')
  t.like(await w.provider.ledger.stats(), { reserved: p.pieceSize, deals: { accepted: 1 } })
  t.is((await w.provider.node.ask()).payload.freeCapacity, (1n << 20n) - p.pieceSize)
  t.deepEqual((await w.provider.lifecycle!.tick()).expired, [], 'nothing is due yet')
  w.clock.now = START + 601
  const late = await uploadPiece(w.provider.url, w.client, id, p.car)
  t.is(await errorCode(late), 'ERR_DEAL_EXPIRED')
  t.deepEqual((await w.provider.lifecycle!.tick()).expired, [id])
  t.is((await w.provider.ledger.deal(id))?.state, 'expired')
  t.like(await w.provider.ledger.stats(), { reserved: 0n, deals: { expired: 1 } })
  t.is((await w.provider.node.ask()).payload.freeCapacity, 1n << 20n)
  t.is((await w.provider.node.admin().deals({ state: 'expired' }))[0]?.id, id)
  t.is(await errorCode(await uploadPiece(w.provider.url, w.client, id, p.car)), 'ERR_DEAL_STATE')
  t.deepEqual(await readdir(w.repo.piecesDir), [])
  t.true((await w.provider.ledger.verify()).entries === 2)
})

test('the upload window bounds a deal that starts later, and a start too far ahead is refused', async (t) => {
  const w = await world({ uploadWindow: 120, maxStartDelay: 7 * 86400 })
  t.teardown(w.close)
  const p = await payload(2)
  const id = await deal(w, p, 1n, START + 86400)
  t.is((await w.provider.ledger.deal(id))?.uploadBy, START + 120)
  const err = await t.throwsAsync(deal(w, p, 2n, START + 8 * 86400))
  t.regex(err!.message, /ERR_START_TOO_LATE/)
})

test('a deal starting about now still gets the minute a start may lie in the past', async (t) => {
  const w = await world()
  t.teardown(w.close)
  const p = await payload(3)
  const id = await deal(w, p, 1n, START - 30)
  t.is((await w.provider.ledger.deal(id))?.uploadBy, START + 60)
})

test('an upload still running at the deadline is cut off and leaves nothing', async (t) => {
  const w = await world()
  t.teardown(w.close)
  const p = await payload(4, 200_000)
  const id = await deal(w, p, 1n, START + 600)
  let release: () => void = () => {}
  const held = new Promise<void>(resolve => { release = resolve })
  async function * body (): AsyncGenerator<Uint8Array> {
    yield p.car.subarray(0, 50_000)
    await held
    yield p.car.subarray(50_000)
  }
  const upload = request(`${w.provider.url}/v1/deals/${id}/piece`, {
    method: 'PUT',
    body: body() as never,
    headers: { 'content-length': String(p.car.length), authorization: uploadAuthorization(w.client, id) }
  }).then(async r => ({ status: r.statusCode, text: await r.body.text() }), (err: Error) => ({ status: 0, text: err.message }))
  // the upload has begun: wait until the provider has the first bytes
  for (let i = 0; i < 200 && (await readdir(w.repo.tmpDir)).length === 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
  w.clock.now = START + 601
  t.deepEqual((await w.provider.lifecycle!.tick()).expired, [id])
  release()
  const answer = await upload
  if (answer.status !== 0) t.regex(answer.text, /ERR_DEAL_EXPIRED/)
  t.is((await w.provider.ledger.deal(id))?.state, 'expired')
  t.deepEqual(await readdir(w.repo.piecesDir), [])
  t.deepEqual(await served(w, p), { raw: 404, piece: 404 })
})

test('a deal past its end stops being served and proven; its piece file goes after the grace; a piece another active deal holds stays', async (t) => {
  const w = await world({ capacity: 1n << 30n, retentionGrace: 1000 })
  t.teardown(w.close)
  const shared = await payload(5)
  const alone = await payload(6)
  const early = await deal(w, shared, 1n, START, START + 4000)
  const late = await deal(w, shared, 2n, START, START + 8000)
  const single = await deal(w, alone, 3n, START, START + 4000)
  for (const [id, p] of [[early, shared], [late, shared], [single, alone]] as const) t.is((await uploadPiece(w.provider.url, w.client, id, p.car)).status, 200)
  t.deepEqual(await served(w, alone), { raw: 200, piece: 200 })
  w.clock.now = START + 4000
  // due, but not yet expired by a tick: no proof past the end
  const proof = await fetch(`${w.provider.url}/v1/deals/${single}/proofs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: proofRequestBody(w.client, single, 4, w.clock.now) })
  t.is(await errorCode(proof), 'ERR_DEAL_EXPIRED')
  t.deepEqual((await w.provider.lifecycle!.tick()).expired.sort(), [early, single].sort())
  // one line per expired deal, with the fields an operator finds on every deal's lines
  t.like(w.logs.find(l => l.event === 'deal-expired' && l.fields.deal === single)?.fields, { client: w.client.did, pieceCid: alone.pieceCid.toString(), pieceSize: Number(alone.pieceSize) })
  t.deepEqual(await served(w, alone), { raw: 404, piece: 404 }, 'an ended deal\'s content is no longer served')
  t.deepEqual(await served(w, shared), { raw: 200, piece: 200 }, 'the same piece under a deal still active is')
  t.like(await w.provider.ledger.stats(), { deals: { active: 1, expired: 2 }, used: shared.pieceSize })
  const files = (): Promise<string[]> => readdir(w.repo.piecesDir).then(names => names.sort())
  t.deepEqual(await files(), [`${shared.pieceCid}.car`, `${shared.pieceCid}.layers`, `${alone.pieceCid}.car`, `${alone.pieceCid}.layers`].sort(), 'kept through the grace')
  w.clock.now = START + 5000
  t.deepEqual((await w.provider.lifecycle!.tick()).removed, [alone.pieceCid.toString()])
  t.deepEqual(w.logs.filter(l => l.event === 'piece-removed').map(l => l.fields), [{ pieceCid: alone.pieceCid.toString() }])
  t.deepEqual(await files(), [`${shared.pieceCid}.car`, `${shared.pieceCid}.layers`].sort())
  w.clock.now = START + 8000
  t.deepEqual((await w.provider.lifecycle!.tick()).expired, [late])
  t.deepEqual(await served(w, shared), { raw: 404, piece: 404 })
  w.clock.now = START + 9000
  t.deepEqual((await w.provider.lifecycle!.tick()).removed, [shared.pieceCid.toString()])
  t.deepEqual(await files(), [])
  t.is((await w.provider.ledger.verify()).entries, 9)
})

test('the schedule is worked a bounded batch per tick and caught up after a restart', async (t) => {
  const w = await world({ capacity: 1n << 30n }, 2)
  t.teardown(w.close)
  const ids: string[] = []
  for (let i = 0; i < 5; i++) ids.push(await deal(w, await payload(10 + i), BigInt(i + 1), START + 100 + i))
  await w.provider.lifecycle!.stop()
  w.clock.now = START + 10_000
  await w.restart()
  // start() ticks at once and keeps going while a whole batch was due
  for (let i = 0; i < 100 && (await w.provider.ledger.stats()).deals.expired !== 5; i++) await new Promise(resolve => setTimeout(resolve, 20))
  t.like(await w.provider.ledger.stats(), { deals: { expired: 5 }, reserved: 0n })
  const report = await w.provider.lifecycle!.tick()
  t.deepEqual(report, { expired: [], removed: [], more: false })
})

test('provider start refuses a malformed --upload-window, --max-start-delay or --retention-grace', async (t) => {
  for (const flag of ['--upload-window', '--max-start-delay', '--retention-grace']) {
    const run = await cairn(['provider', 'start', '--repo', join(tmpdir(), 'cairn-no-such-repo'), flag, 'soon'])
    t.is(run.code, 2, `${flag}: ${run.stderr}`)
    t.regex(run.stderr, new RegExp(`ERR_INVALID_ARGUMENT: ${flag} must be a duration`))
  }
})

/** Stores `p`'s bytes as a PDP piece (a classic upload, docs/pdp.md): parked, under the same piece CID. */
async function pdpUpload (w: World, p: Payload): Promise<void> {
  const created = await fetch(`${w.provider.url}/pdp/piece`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pieceCid: p.pieceCid.toString() }) })
  if (created.status !== 201) throw new Error(`POST /pdp/piece: ${created.status} ${await created.text()}`)
  const put = await fetch(`${w.provider.url}${created.headers.get('location') ?? ''}`, { method: 'PUT', body: p.car })
  if (put.status !== 204) throw new Error(`PUT: ${put.status} ${await put.text()}`)
}

test('a piece in its retention grace survives a restart with recovery; its removal leaves the PDP copy of the same bytes', async (t) => {
  const w = await world({ capacity: 1n << 30n, retentionGrace: 1000 })
  t.teardown(w.close)
  const p = await payload(30)
  const id = await deal(w, p, 1n, START, START + 4000)
  t.is((await uploadPiece(w.provider.url, w.client, id, p.car)).status, 200)
  await pdpUpload(w, p)
  const pdpFile = join(w.repo.path, 'pdp', 'pieces', `${p.pieceCid.toString()}.car`)
  w.clock.now = START + 4000
  t.deepEqual((await w.provider.lifecycle!.tick()).expired, [id])
  t.deepEqual(await served(w, p), { raw: 200, piece: 200 }, 'the PDP piece is still served')
  await w.restart()
  t.deepEqual((await readdir(w.repo.piecesDir)).sort(), [`${p.pieceCid.toString()}.car`, `${p.pieceCid.toString()}.layers`], 'not quarantined during the grace')
  t.deepEqual(await readdir(join(w.repo.path, 'quarantine')).catch(() => []), [])
  w.clock.now = START + 5000
  t.deepEqual((await w.provider.lifecycle!.tick()).removed, [p.pieceCid.toString()])
  t.deepEqual(await readdir(w.repo.piecesDir), [])
  t.true((await stat(pdpFile)).isFile(), 'the PDP store\'s file is not the deal\'s to remove')
  t.deepEqual(await served(w, p), { raw: 200, piece: 200 })
})

test('the PDP sweep of a parked piece leaves a deal piece of the same bytes stored and served', async (t) => {
  const w = await world({ capacity: 1n << 30n })
  t.teardown(w.close)
  const p = await payload(31)
  const id = await deal(w, p, 1n, START, START + 10 * 86400)
  t.is((await uploadPiece(w.provider.url, w.client, id, p.car)).status, 200)
  await pdpUpload(w, p)
  // past the park TTL (24 h), long before the deal's end
  w.clock.now = START + 2 * 86400
  t.is(await w.provider.pdp.sweep(), 1)
  t.deepEqual(await readdir(join(w.repo.path, 'pdp', 'pieces')), [])
  t.deepEqual((await w.provider.lifecycle!.tick()).expired, [])
  t.true((await stat(join(w.repo.piecesDir, `${p.pieceCid.toString()}.car`))).isFile())
  t.deepEqual(await served(w, p), { raw: 200, piece: 200 })
  t.is((await w.provider.ledger.deal(id))?.state, 'active')
})
