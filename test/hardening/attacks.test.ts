/**
 * Attacks on the deal path, its limits and the ledger, each as an attacker
 * would run it against a real provider on loopback (or a real ledger), with
 * the outcome asserted and written to the run summary (docs/reliability.md):
 * concurrent proposals for the same nonce or the last free bytes, endless and
 * slow bodies at both ends, huge amounts, proof-request floods, and a ledger
 * cut short, re-signed with the node's own key, or with its indexes edited.
 */
import test from 'ava'
import { connect, type Socket } from 'node:net'
import { readdir } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJSON from '@ipld/dag-json'
import { auditDeal } from '../../src/client/audit.js'
import { ProviderClient } from '../../src/client/provider-client.js'
import type { Proposal } from '../../src/protocol/interface.js'
import { signProposal } from '../../src/protocol/proposal.js'
import { U64_MAX } from '../../src/protocol/validate.js'
import { seqKey } from '../../src/ledger/entry.js'
import { LevelLedger } from '../../src/ledger/level.js'
import { checkWitnessed } from '../../src/ledger/witness.js'
import { startProviderNode, type ProviderNode } from '../../src/provider/node.js'
import { Repo } from '../../src/repo/repo.js'
import { world as auditWorld } from '../audit/helpers.js'
import { resigned } from '../ledger/helpers.js'
import { proposalOfSize, testTerms } from '../provider/fixtures.js'
import { destroy, errorCode, makeDeal, newClient, payload, postJSON, proofRequestBody, scale, summarize, uploadPiece, world } from './helpers.js'

const MiB = 1n << 20n

async function node (capacity: bigint, dir: string): Promise<{ provider: ProviderNode, repo: Repo }> {
  const repo = await Repo.init(join(dir, 'attacked'))
  return { provider: await startProviderNode(repo, testTerms({ capacity }), { lifecycle: false }), repo }
}

function rawProposal (client: ReturnType<typeof newClient>, provider: string, size: bigint, nonce: bigint, overrides: Partial<Proposal> = {}): string {
  return dagJSON.stringify(signProposal(client, proposalOfSize(client.did, provider, size, nonce, { label: `attack ${nonce}`, ...overrides })))
}

test.serial('concurrent proposals: one nonce sixty times, and eight 32 MiB proposals for 64 MiB free', async (t) => {
  const w = await world()
  const first = await node(64n * MiB, join(w.dir, 'nonce'))
  const second = await node(64n * MiB, join(w.dir, 'capacity'))
  try {
    const client = newClient()
    const propose = async (n: typeof first, size: bigint, nonce: bigint): Promise<number> => (await postJSON(`${n.provider.url}/v1/deals`, rawProposal(client, n.repo.identity.did, size, nonce))).status
    const sameNonce = await Promise.all(Array.from({ length: 60 }, async () => await propose(first, MiB, 9n)))
    t.is(sameNonce.filter(s => s === 201).length, 1)
    const big = await Promise.all(Array.from({ length: 8 }, async (_, i) => await propose(second, 32n * MiB, BigInt(100 + i))))
    t.is(big.filter(s => s === 201).length, 2)
    t.like(await second.provider.ledger.stats(), { reserved: 64n * MiB })
    await summarize({ area: 'attack', what: '60 concurrent proposals with one nonce', injected: 60, outcome: '1 accepted, 59 ERR_REPLAYED_NONCE' })
    await summarize({ area: 'attack', what: 'eight concurrent 32 MiB proposals for 64 MiB free', injected: 8, outcome: '2 accepted (what fits), 6 ERR_INSUFFICIENT_CAPACITY' })
  } finally {
    for (const n of [first, second]) {
      await n.provider.close()
      await n.repo.close()
    }
    await destroy(w)
  }
})

test.serial('endless bodies: a JSON body without end to the provider, an ask without end to a client', async (t) => {
  const w = await world()
  try {
    const { hostname, port } = new URL(w.url)
    const said = await new Promise<string>((resolve) => {
      const socket: Socket = connect(Number(port), hostname)
      let text = ''
      socket.setEncoding('utf8').on('data', (d: string) => { text += d })
      socket.on('error', () => {})
      socket.on('close', () => resolve(text))
      socket.on('connect', () => {
        socket.write('POST /v1/deals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n')
        const chunk = `4000\r\n${'x'.repeat(0x4000)}\r\n`
        const pump = (): void => { while (!socket.destroyed && socket.write(chunk)) { /* until the kernel buffer fills */ } if (!socket.destroyed) socket.once('drain', pump) }
        pump()
      })
    })
    t.regex(said, /"code":"ERR_PAYLOAD_TOO_LARGE"/)
    const endless = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      const timer = setInterval(() => { if (res.destroyed) clearInterval(timer); else res.write('x'.repeat(64 * 1024)) }, 1)
    })
    await new Promise<void>(resolve => endless.listen(0, '127.0.0.1', resolve))
    const rss = process.memoryUsage().rss
    const err = await t.throwsAsync(new ProviderClient(`http://127.0.0.1:${(endless.address() as AddressInfo).port}`).ask())
    endless.closeAllConnections()
    await new Promise(resolve => endless.close(resolve))
    t.is((err as { code?: string }).code, 'ERR_RESPONSE_TOO_LARGE')
    const grew = process.memoryUsage().rss - rss
    t.true(grew < 64 * 2 ** 20, `RSS grew ${grew} bytes`)
    await summarize({ area: 'attack', what: 'endless chunked JSON body to the provider', injected: 1, outcome: 'cut off: 413 ERR_PAYLOAD_TOO_LARGE at 64 KiB' })
    await summarize({ area: 'attack', what: 'endless /v1/ask answer to a client', injected: 1, outcome: 'ERR_RESPONSE_TOO_LARGE at 64 KiB' })
  } finally {
    await destroy(w)
  }
})

test.serial('slow bodies: many JSON bodies sent a byte at a time are all cut off at their deadline, and their handles released', async (t) => {
  const w = await world({ limits: { bodyTimeoutMs: 1000, idleTimeoutMs: 20_000, headersTimeoutMs: 20_000 } })
  try {
    const n = scale(40, 2000)
    const fds = async (): Promise<number> => (await readdir('/proc/self/fd')).length
    const before = await fds()
    const { hostname, port } = new URL(w.url)
    const answers = await Promise.all(Array.from({ length: n }, async () => await new Promise<string>((resolve) => {
      const socket = connect(Number(port), hostname)
      let text = ''
      socket.setEncoding('utf8').on('data', (d: string) => { text += d })
      socket.on('error', () => {})
      socket.on('close', () => resolve(text))
      socket.on('connect', () => {
        socket.write('POST /v1/deals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n')
        const timer = setInterval(() => { if (socket.destroyed) clearInterval(timer); else socket.write('x') }, 200)
        socket.on('close', () => clearInterval(timer))
      })
    })))
    t.true(answers.every(a => /^HTTP\/1\.1 408 /.test(a) && a.includes('ERR_TIMEOUT')), answers.find(a => !a.includes('ERR_TIMEOUT')))
    for (let i = 0; i < 50 && await fds() > before + 5; i++) await new Promise(resolve => setTimeout(resolve, 50))
    const after = await fds()
    t.true(after <= before + 5, `${before} handles before, ${after} after`)
    await summarize({ area: 'attack', what: 'JSON bodies sent one byte every 200 ms, at once', injected: n, outcome: `all cut off with 408 ERR_TIMEOUT at the body deadline; handles back to ${after - before >= 0 ? '+' : ''}${after - before}` })
  } finally {
    await destroy(w)
  }
})

test.serial('huge amounts: 2^64−1 per GiB per day is refused by the provider before anything is recorded', async (t) => {
  const w = await world()
  const { provider, repo } = await node(1n << 32n, w.dir)
  try {
    const client = newClient()
    const res = await postJSON(`${provider.url}/v1/deals`, rawProposal(client, repo.identity.did, 1n << 30n, 1n, { pricePerGiBDay: U64_MAX }))
    t.is(res.status, 403)
    t.is(await errorCode(res), 'ERR_AMOUNT_TOO_LARGE')
    t.is(provider.ledger.head(), null)
    await summarize({ area: 'attack', what: 'proposal at 2^64−1 per GiB per day for a 1 GiB piece', injected: 1, outcome: 'refused 403 ERR_AMOUNT_TOO_LARGE; nothing recorded' })
  } finally {
    await provider.close()
    await repo.close()
    await destroy(w)
  }
})

test.serial('proof floods: strangers, too many challenges and too many requests are refused before any proof is made', async (t) => {
  const w = await world()
  try {
    const p = await payload(71, 50_000)
    const id = await makeDeal(w.url, w.client, w.repo.identity.did, p, 1n)
    t.is((await uploadPiece(w.url, w.client, id, p.car)).status, 200)
    const flood = async (body: () => string, n = 48): Promise<string[]> => await Promise.all(Array.from({ length: n }, async () => {
      const res = await postJSON(`${w.url}/v1/deals/${id}/proofs`, body())
      return res.status === 200 ? (await res.arrayBuffer(), 'ok') : await errorCode(res)
    }))
    const strangers = await flood(() => proofRequestBody(newClient(), id, 1024))
    t.deepEqual([...new Set(strangers)], ['ERR_UNAUTHORIZED'])
    const greedy = await flood(() => proofRequestBody(w.client, id, 1024))
    t.deepEqual([...new Set(greedy)], ['ERR_TOO_MANY_CHALLENGES'])
    let slowest = 0
    let probing = true
    const probe = (async () => {
      while (probing) {
        const started = performance.now()
        await (await fetch(`${w.url}/healthz`)).arrayBuffer()
        slowest = Math.max(slowest, performance.now() - started)
      }
    })()
    const honest = await flood(() => proofRequestBody(w.client, id, 16))
    probing = false
    await probe
    t.is(honest.filter(r => r === 'ok').length, 8, 'the burst')
    t.is(honest.filter(r => r === 'ERR_RATE_LIMITED').length, 40)
    t.like(await w.ledger.stats(), { proofsAnswered: 8 })
    await summarize({ area: 'attack', what: '48 proof requests for 1,024 challenges signed by strangers', injected: 48, outcome: 'all 401 ERR_UNAUTHORIZED; no proof made' })
    await summarize({ area: 'attack', what: '48 proof requests by the client for 1,024 challenges (deal: 16)', injected: 48, outcome: 'all 403 ERR_TOO_MANY_CHALLENGES; no proof made' })
    await summarize({ area: 'attack', what: '48 concurrent valid proof requests for one deal', injected: 48, outcome: `8 answered (the burst), 40 429 ERR_RATE_LIMITED; slowest /healthz meanwhile ${Math.round(slowest)} ms` })
  } finally {
    await destroy(w)
  }
})

test.serial('the ledger: entries cut off the end, an edited index, and the whole chain re-signed with the node\'s own key', async (t) => {
  const w = await auditWorld(1)
  try {
    const deal = await w.deal(0, { provingPeriod: 600 })
    for (const period of [0, 1]) t.is((await auditDeal(w.ctx, deal, { timeoutMs: 5000, period })).outcome, 'passed')
    const db = w.client.db
    const signer = w.client.repo.identity
    // an edited balance: what `ledger balance` shows, and what verify re-derives
    const balances = db.sublevel<string, Uint8Array>(['ledger', 'balances'], { valueEncoding: 'view' })
    const [key] = await balances.keys().all()
    const original = (await balances.get(key!))!
    await balances.put(key!, dagCbor.encode({ ...(dagCbor.decode(original) as object), paid: '1', outstanding: '-1' }))
    const edited = await t.throwsAsync((await LevelLedger.open(db, signer)).verify())
    t.is((edited as { code?: string }).code, 'ERR_LEDGER_BROKEN')
    await balances.put(key!, original)
    // an export of the provider's ledger, cut short
    const provider = w.providers[0]!
    const lines: string[] = []
    for await (const line of provider.ledger.export()) lines.push(line)
    const cut = await t.throwsAsync(checkWitnessed(w.client.ledger, lines.slice(0, -1)))
    t.is((cut as { code?: string }).code, 'ERR_LEDGER_REWRITTEN')
    // entries deleted off the end of the client's own ledger
    const entries = db.sublevel<string, Uint8Array>(['ledger', 'entries'], { valueEncoding: 'view' })
    const head = w.client.ledger.head()!.seq
    const last = (await entries.get(seqKey(head)))!
    await entries.del(seqKey(head))
    const truncated = await t.throwsAsync((await LevelLedger.open(db, signer)).verify())
    t.is((truncated as { code?: string }).code, 'ERR_LEDGER_BROKEN')
    await entries.put(seqKey(head), last)
    // the whole chain written again with the client's own key, the first payment 1 unit higher:
    // its own verify passes (every link and signature is good); the provider's witnessed heads do not
    const own: string[] = []
    for await (const line of w.client.ledger.export()) own.push(line)
    let forged = false
    const rewritten = await resigned(w.dir, signer, own, (kind, fields) => {
      if (kind !== 'payment-accrued' || forged) return fields
      forged = true
      return { ...fields, amount: BigInt(fields.amount as number | bigint) + 1n }
    })
    const caught = await t.throwsAsync(checkWitnessed(provider.ledger, rewritten))
    t.is((caught as { code?: string }).code, 'ERR_LEDGER_REWRITTEN')
    await summarize({ area: 'attack', what: 'ledger re-signed whole with the node\'s own key, one payment changed', injected: 1, outcome: 'its own verify passes (as it must); the counterparty\'s verify --against: ERR_LEDGER_REWRITTEN' })
    await summarize({ area: 'attack', what: 'ledger balance index edited (paid 1)', injected: 1, outcome: 'verify: ERR_LEDGER_BROKEN naming balances/<counterparty>' })
    await summarize({ area: 'attack', what: 'last ledger entry deleted (indexes left)', injected: 1, outcome: 'verify: ERR_LEDGER_BROKEN (the head index names the lost entry)' })
    await summarize({ area: 'attack', what: 'counterparty export cut short by one entry', injected: 1, outcome: 'verify --against: ERR_LEDGER_REWRITTEN naming the witnessed head it lacks' })
  } finally {
    await w.cleanup()
  }
})
