/**
 * Proposals to different nodes of one cluster race for one capacity, one
 * nonce index and one set of deal ids: the capacity, nonce and deal checks
 * are made again under the ledger head lock, in the transaction that records
 * the acceptance (src/ledger/admission.ts), so of proposals racing for the last
 * free bytes exactly the ones that fit are accepted.
 *
 * Two nodes run in this process, each with its own connection pool, ledger
 * and deal service on one PostgreSQL database. A gate holds each node's
 * append until the other node's proposal has passed its own first check too,
 * so both always check against the same free bytes (without the second check
 * both would be accepted).
 */
import test from 'ava'
import * as dagJSON from '@ipld/dag-json'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Db } from '../../src/postgres/db.js'
import { StateLedger } from '../../src/ledger/state.js'
import type { AppendItem, Ledger } from '../../src/ledger/interface.js'
import { signProposal } from '../../src/protocol/proposal.js'
import { ProviderDeals } from '../../src/provider/deals.js'
import { generateSecretKey, identityFromSecret } from '../../src/repo/identity.js'
import { PgStore } from '../../src/state/pg.js'
import { PieceStore } from '../../src/store/pieces.js'
import { proposalOfSize, testTerms } from '../provider/fixtures.js'
import { clusterDatabase, type Cluster } from './helpers.js'

const MiB = 1n << 20n
const identity = identityFromSecret(generateSecretKey())
const client = identityFromSecret(generateSecretKey())

let dir: string
const dbs: Db[] = []
const clusters: Cluster[] = []

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-cluster-proposals-'))
})

test.after.always(async () => {
  for (const db of dbs) await db.close()
  for (const cluster of clusters) await cluster.cleanup()
  await rm(dir, { recursive: true, force: true })
})

/** A database of its own for each test: the tests run at once. */
async function database (): Promise<Cluster> {
  const cluster = await clusterDatabase()
  clusters.push(cluster)
  return cluster
}

/**
 * Holds every append of a `deal-accepted` entry until `parties` of them wait
 * (or `timeoutMs` passes: a proposal refused by its first check never comes).
 */
function gate (parties: number, timeoutMs = 3000): (ledger: Ledger) => Ledger {
  let waiting: Array<() => void> = []
  const arrive = async (): Promise<void> => {
    await new Promise<void>((resolve) => {
      waiting.push(resolve)
      if (waiting.length >= parties) {
        for (const go of waiting) go()
        waiting = []
      } else {
        setTimeout(resolve, timeoutMs)
      }
    })
  }
  return (ledger) => new Proxy(ledger, {
    get (target, name, receiver) {
      if (name === 'appendAll') {
        return async (items: readonly AppendItem[]) => {
          if (items.some(i => i.kind === 'deal-accepted')) await arrive()
          return await target.appendAll(items)
        }
      }
      const value = Reflect.get(target, name, receiver) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    }
  })
}

async function node (cluster: Cluster, name: string, capacity: bigint, wrap: (ledger: Ledger) => Ledger): Promise<{ deals: ProviderDeals, ledger: StateLedger }> {
  const db = await Db.connect({ url: cluster.url })
  dbs.push(db)
  const state = new PgStore(db)
  const ledger = await StateLedger.openOn(state, identity)
  const store = new PieceStore(join(dir, name, 'pieces'), join(dir, name, 'tmp'))
  const deals = new ProviderDeals(state, wrap(ledger), store, identity, testTerms({ capacity, endpoint: 'http://127.0.0.1:1' }), undefined, { node: name })
  return { deals, ledger }
}

async function propose (deals: ProviderDeals, size: bigint, nonce: bigint, label: string): Promise<string> {
  try {
    // as the HTTP route hands it over: parsed from DAG-JSON
    await deals.propose(dagJSON.parse(dagJSON.stringify(signProposal(client, proposalOfSize(client.did, identity.did, size, nonce, { label })))))
    return 'accepted'
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}

test('two nodes racing for 3 slots with 3 proposals each: exactly 3 are accepted', async (t) => {
  const slot = 4n * MiB
  const held = gate(2)
  const cluster = await database()
  const a = await node(cluster, 'a', 3n * slot, held)
  const b = await node(cluster, 'b', 3n * slot, held)
  const race = async (n: { deals: ProviderDeals }, first: bigint): Promise<string[]> => {
    const out: string[] = []
    // one node's proposals one after another (a node takes its own one at a time anyway)
    for (let i = 0n; i < 3n; i++) out.push(await propose(n.deals, slot, first + i, 'race'))
    return out
  }
  const answers = (await Promise.all([race(a, 1n), race(b, 101n)])).flat()
  t.is(answers.filter(x => x === 'accepted').length, 3, answers.join(', '))
  t.deepEqual([...new Set(answers.filter(x => x !== 'accepted'))], ['ERR_INSUFFICIENT_CAPACITY'])
  t.like(await a.ledger.stats(), { reserved: 3n * slot, deals: { accepted: 3 } })
  t.like(await b.ledger.verify(), { entries: 3 })
})

test('one nonce proposed to two nodes at once: accepted by one of them only', async (t) => {
  const held = gate(2)
  const cluster = await database()
  const a = await node(cluster, 'a', 1n << 30n, held)
  const b = await node(cluster, 'b', 1n << 30n, held)
  const answers = await Promise.all([propose(a.deals, MiB, 9_000n, 'via a'), propose(b.deals, MiB, 9_000n, 'via b')])
  t.deepEqual(answers.sort(), ['ERR_REPLAYED_NONCE', 'accepted'])
  t.is((await a.ledger.refreshHead())?.seq, 1)
})
