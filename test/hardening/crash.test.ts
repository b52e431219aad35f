/**
 * Crash consistency with real processes (docs/protocol.md "Upload", docs/ledger.md): the
 * provider runs as `cairn provider start` and is killed with SIGKILL
 *
 *   - after N bytes of an upload reached it (N spread over the whole CAR),
 *     with seven more uploads in flight at other offsets;
 *   - exactly at each durable step of an upload (body staged and fsync'd,
 *     renamed into the store, ledger batch committed) via the test-only
 *     CAIRN_TEST_CRASH_AT hook;
 *   - a random moment after a proposal or a whole upload was sent (inside
 *     the ledger's synced batches);
 *
 * then restarted. After every restart the invariants hold: no temporary file;
 * every piece file belongs to an active deal; every active deal's piece and
 * blocks are served byte for byte; an accepted deal serves nothing; and the
 * interrupted upload, retried, completes. Each chain ends with a clean stop,
 * `ledger verify` of every signature, and a scan of the indexes: no block or
 * piece entry without its piece file. Data lost: acknowledged deals that are
 * not served afterwards, asserted 0.
 *
 * Two chains run in parallel; CAIRN_CRASH_KILLS sets the kills per chain
 * (default 25, or 125 with CAIRN_SOAK=1).
 */
import test from 'ava'
import { connect } from 'node:net'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagCBOR from '@ipld/dag-cbor'
import * as dagJSON from '@ipld/dag-json'
import { signProposal } from '../../src/protocol/proposal.js'
import { LevelLedger } from '../../src/ledger/level.js'
import { uploadAuthorization } from '../../src/protocol/auth.js'
import { BLOCK_PREFIX, DAG_PREFIX, PIECE_PREFIX, PIECE_V1_PREFIX } from '../../src/state/spaces.js'
import { Repo } from '../../src/repo/repo.js'
import { newClient, payload, postJSON, proposalOf, scale, startProviderProcess, summarize, uploadPiece, type Payload, type ProviderProcess } from './helpers.js'

const KILLS = Number(process.env.CAIRN_CRASH_KILLS ?? scale(25, 125))
const debug = process.env.CAIRN_CRASH_DEBUG === '1' ? (...v: unknown[]): void => { process.stderr.write(`${Date.now() % 100000} ${v.join(' ')}\n`) } : () => {}
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

type Kind = 'bytes' | 'staged' | 'committed' | 'recorded' | 'propose' | 'upload-timer'
const KINDS: Kind[] = ['bytes', 'bytes', 'staged', 'bytes', 'committed', 'bytes', 'recorded', 'propose', 'bytes', 'upload-timer']

interface Deal { id: string, p: Payload, acked: boolean, /** served byte for byte since it became active */ verified?: boolean }

interface ChainStats { kills: number, crashPoints: Record<string, number>, retried: number, quarantined: number, lost: number, ms: number }

/** Sends the request head and the first `n` bytes of the body, then leaves the socket open (the kill cuts it). */
async function partialUpload (url: string, client: ReturnType<typeof newClient>, dealId: string, car: Uint8Array, n: number): Promise<() => void> {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port), hostname)
  socket.on('error', () => {})
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  socket.write(`PUT /v1/deals/${dealId}/piece HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: ${uploadAuthorization(client, dealId)}\r\nContent-Length: ${car.length}\r\n\r\n`)
  if (n > 0) socket.write(car.subarray(0, n))
  return () => socket.destroy()
}

async function propose (url: string, client: ReturnType<typeof newClient>, provider: string, p: Payload, nonce: bigint): Promise<string> {
  const res = await postJSON(`${url}/v1/deals`, dagJSON.stringify(signProposal(client, proposalOf(client, provider, p, nonce))))
  const text = await res.text()
  if (res.status !== 201) throw new Error(`proposal refused (${res.status}): ${text}`)
  return (dagJSON.parse(text) as { payload: { dealId: { toString: () => string } } }).payload.dealId.toString()
}

async function stateOf (url: string, id: string): Promise<string | undefined> {
  const res = await fetch(`${url}/v1/deals/${id}`)
  if (res.status === 404) { await res.arrayBuffer(); return undefined }
  return (dagJSON.parse(await res.text()) as { payload: { state: string } }).payload.state
}

/** The invariants a restarted provider must show before it does anything else. */
async function checkLive (t: { is: (a: unknown, b: unknown, m?: string) => void, deepEqual: (a: unknown, b: unknown, m?: string) => void, fail: (m: string) => void }, repoDir: string, provider: ProviderProcess, deals: Deal[], full = false): Promise<number> {
  t.deepEqual(await readdir(join(repoDir, 'tmp')), [], 'no temporary file after restart')
  const files = (await readdir(join(repoDir, 'pieces'))).filter((n) => n.endsWith('.car'))
  const activePieces = new Set<string>()
  let lost = 0
  for (const d of deals) {
    const state = await stateOf(provider.url, d.id)
    if (state === 'active') {
      activePieces.add(`${d.p.pieceCid.toString()}.car`)
      // bytes once checked are checked again at the end; in between the file listing below holds them to account
      if (d.verified === true && !full) continue
      d.verified = true
      const piece = new Uint8Array(await (await fetch(`${provider.url}/piece/${d.p.pieceCid.toString()}`)).arrayBuffer())
      const car = await fetch(`${provider.url}/ipfs/${d.p.root.toString()}?format=car`)
      const dag = new Uint8Array(await car.arrayBuffer())
      if (Buffer.compare(piece, d.p.car) !== 0 || Buffer.compare(dag, d.p.car) !== 0) { lost += d.p.car.length; t.fail(`active deal ${d.id} is not served byte for byte`) }
    } else if (state === 'accepted') {
      if (d.acked) { lost += d.p.car.length; t.fail(`deal ${d.id} was acknowledged active and is now ${state}`) }
      const raw = await fetch(`${provider.url}/ipfs/${d.p.root.toString()}?format=raw`)
      await raw.arrayBuffer()
      t.is(raw.status, 404, 'an accepted deal serves nothing')
    } else if (state === undefined) {
      // a proposal killed before its ledger batch committed: it never happened
      if (d.acked) t.fail(`deal ${d.id} vanished`)
    } else {
      t.fail(`deal ${d.id} is ${state}`)
    }
  }
  t.deepEqual(files.sort(), [...activePieces].sort(), 'every piece file belongs to an active deal, and every active deal has its file')
  return lost
}

async function runChain (t: Parameters<typeof checkLive>[0], chain: number, kills: number): Promise<ChainStats> {
  const started = Date.now()
  const dir = await mkdtemp(join(tmpdir(), `cairn-crash-${chain}-`))
  const repoDir = join(dir, 'repo')
  const stats: ChainStats = { kills: 0, crashPoints: {}, retried: 0, quarantined: 0, lost: 0, ms: 0 }
  const count = (k: string, n = 1): void => { stats.crashPoints[k] = (stats.crashPoints[k] ?? 0) + n }
  try {
    const repo = await Repo.init(repoDir)
    const did = repo.identity.did
    const client = newClient()
    const deals: Deal[] = []
    let nonce = 0n
    let seed = chain * 100_000
    const fresh = async (url: string): Promise<Deal | undefined> => {
      const p = await payload(++seed, 4000 + (seed % 7) * 1000)
      const deal: Deal = { id: '', p, acked: false }
      try {
        deal.id = await propose(url, client, did, p, ++nonce)
      } catch (err) {
        t.fail(`a restarted provider refused an honest proposal: ${(err as Error).message}`)
        return undefined
      }
      deals.push(deal)
      return deal
    }
    const retryAll = async (url: string): Promise<void> => {
      for (const d of deals) {
        if (d.acked || (await stateOf(url, d.id)) !== 'accepted') continue
        const res = await uploadPiece(url, client, d.id, d.p.car)
        t.is(res.status, 200, `retried upload completes: ${await res.clone().text()}`)
        d.acked = res.status === 200
        stats.retried++
      }
    }

    for (let k = 0; k < kills; k++) {
      const kind = KINDS[(k + chain) % KINDS.length] as Kind
      const phase = kind === 'staged' || kind === 'committed' || kind === 'recorded' ? kind : ''
      debug(`chain ${chain} kill ${k}: ${kind}`)
      const provider = await startProviderProcess(repoDir, { CAIRN_TEST_CRASH_AT: phase })
      debug(`chain ${chain} kill ${k}: started ${provider.url}`)
      try {
        stats.lost += await checkLive(t, repoDir, provider, deals)
        debug(`chain ${chain} kill ${k}: checked`)
        const recovered = /provider-recovered .*quarantined=(\d+)/.exec(provider.stderr())
        stats.quarantined += Number(recovered?.[1] ?? 0)
        if (phase === '') await retryAll(provider.url)
        debug(`chain ${chain} kill ${k}: retried`)
        if (kind === 'bytes') {
          const inFlight = await Promise.all(Array.from({ length: 8 }, async () => await fresh(provider.url)))
          const cuts: Array<() => void> = []
          for (const [i, d] of inFlight.entries()) {
            if (d === undefined) continue
            // offsets walk the whole CAR over the chain: header, frames, the last byte
            const n = Math.min(d.p.car.length, Math.floor(((k * 7 + i * 3 + chain) % 23) / 22 * d.p.car.length))
            cuts.push(await partialUpload(provider.url, client, d.id, d.p.car, n))
            count(`upload cut after N bytes (${n === d.p.car.length ? 'all' : n === 0 ? '0' : 'mid'})`)
          }
          await sleep(30)
          await provider.kill()
          for (const cut of cuts) cut()
        } else if (phase !== '') {
          const d = await fresh(provider.url)
          if (d !== undefined) {
            const res = await uploadPiece(provider.url, client, d.id, d.p.car).catch(() => undefined)
            if (res?.status === 200) d.acked = true
            count(`killed at upload step "${phase}"`)
          }
          const code = await Promise.race([provider.exited, sleep(20_000).then(() => 'still running')])
          t.is(code, null, 'the provider killed itself at the step')
        } else if (kind === 'propose') {
          const p = await payload(++seed)
          const signed = signProposal(client, proposalOf(client, did, p, ++nonce))
          const body = dagJSON.stringify(signed)
          const sent = postJSON(`${provider.url}/v1/deals`, body).then(async (r) => ({ status: r.status, text: await r.text() }), () => undefined)
          await sleep((k * 5) % 25)
          await provider.kill()
          const r = await sent
          // whether or not the acceptance came back, the deal is recorded whole or not at all
          const id = r?.status === 201 ? (dagJSON.parse(r.text) as { payload: { dealId: { toString: () => string } } }).payload.dealId.toString() : undefined
          if (id !== undefined) deals.push({ id, p, acked: false })
          count('proposal in its ledger batch')
        } else {
          const d = await fresh(provider.url)
          if (d !== undefined) {
            const sent = uploadPiece(provider.url, client, d.id, d.p.car).then((r) => { if (r.status === 200) d.acked = true }, () => {})
            await sleep((k * 3) % 40)
            await provider.kill()
            await sent
            count('whole upload sent, killed 0–40 ms later')
          }
        }
        stats.kills++
      } finally {
        await provider.kill()
      }
    }

    debug(`chain ${chain}: final restart`)
    // the last restart: recovery, invariants, every interrupted deal completed, clean stop
    const provider = await startProviderProcess(repoDir)
    stats.lost += await checkLive(t, repoDir, provider, deals, true)
    await retryAll(provider.url)
    stats.lost += await checkLive(t, repoDir, provider, deals, true)
    provider.child.kill('SIGTERM')
    t.is(await provider.exited, 0, 'SIGTERM stops the provider cleanly')

    // offline: the ledger verifies and the indexes hold nothing without its piece
    const reopened = await Repo.open(repoDir)
    try {
      const db = await reopened.db()
      const ledger = await LevelLedger.open(db, reopened.identity)
      await ledger.verify({ signatures: 'all' })
      const pieces = new Map<string, number>()
      for await (const [key, value] of db.iterator({ gte: PIECE_PREFIX, lt: PIECE_PREFIX + '\xff' })) {
        const piece = key.slice(PIECE_PREFIX.length)
        const info = await stat(join(repoDir, 'pieces', `${piece}.car`)).catch(() => undefined)
        t.is(info?.size, (dagCBOR.decode(value) as { size: number }).size, `piece ${piece} is on disk with its indexed size`)
        pieces.set(piece, 0)
      }
      for await (const value of db.values({ gte: BLOCK_PREFIX, lt: BLOCK_PREFIX + '\xff' })) {
        const piece = (dagCBOR.decode(value) as { piece: string }).piece
        if (!pieces.has(piece)) t.fail(`a block index entry points at ${piece}, which is not indexed`)
      }
      for (const prefix of [PIECE_V1_PREFIX, DAG_PREFIX]) {
        for await (const value of db.values({ gte: prefix, lt: prefix + '\xff' })) {
          const piece = new TextDecoder().decode(value)
          if (!pieces.has(piece)) t.fail(`a ${prefix} index entry points at ${piece}, which is not indexed`)
        }
      }
      for (const d of deals) {
        const state = (await ledger.deal(d.id))?.state
        if (d.acked) t.is(state, 'active')
        if (state === 'active' && !pieces.has(d.p.pieceCid.toString())) t.fail(`active deal ${d.id} has no piece entry`)
      }
    } finally {
      await reopened.close()
    }
  } finally {
    stats.ms = Date.now() - started
    await rm(dir, { recursive: true, force: true })
  }
  return stats
}

test('SIGKILL at many points of uploads and ledger writes: nothing lost, nothing orphaned, retries complete', async (t) => {
  t.timeout(30 * 60_000)
  const chains = await Promise.all([0, 1].map(async (chain) => await runChain(t, chain, KILLS)))
  const points: Record<string, number> = {}
  for (const c of chains) for (const [k, v] of Object.entries(c.crashPoints)) points[k] = (points[k] ?? 0) + v
  const total = Object.values(points).reduce((a, b) => a + b, 0)
  const kills = chains.reduce((a, c) => a + c.kills, 0)
  const lost = chains.reduce((a, c) => a + c.lost, 0)
  t.log(`${kills} kills, ${total} crash points, ${chains.reduce((a, c) => a + c.retried, 0)} retried uploads, ${chains.reduce((a, c) => a + c.quarantined, 0)} pieces quarantined, ${Math.max(...chains.map((c) => c.ms))} ms`)
  t.is(lost, 0)
  for (const [what, n] of Object.entries(points)) {
    await summarize({ area: 'crash', what: `provider SIGKILL: ${what}`, injected: n, outcome: what.startsWith('proposal') ? 'restarted; deal recorded whole or not at all; invariants held' : 'restarted; invariants held; interrupted upload retried to active', lost: 0 })
  }
  await summarize({ area: 'crash', what: 'provider SIGKILL (all kinds): process kills', injected: kills, outcome: `${total} interrupted operations; ${chains.reduce((a, c) => a + c.retried, 0)} retried to active; ${chains.reduce((a, c) => a + c.quarantined, 0)} unindexed pieces quarantined; ledger verify passed`, lost, ms: Math.max(...chains.map((c) => c.ms)) })
  t.true(total >= Math.min(200, KILLS * 6), `${total} crash points`)
})
