/**
 * The read-only views of a repo that CLI commands show (ledger log, verify,
 * export, balance and the witnessed heads; the client's deals; the address book; where a DAG can
 * be had; the delegated routers), in one place and as plain JSON. While a node (`provider start`,
 * `watch`) holds the repo's LevelDB lock no other process can open it — and
 * LevelDB offers no read-only snapshot to another process — so the same views
 * are served by that node on its loopback admin API (src/provider/admin.ts),
 * and `withReads` goes there when the repo is held.
 */
import { once } from 'node:events'
import { CID } from 'multiformats/cid'
import type { ServerResponse } from 'node:http'
import { CairnError, isCairnError } from '../errors.js'
import type { LedgerEntry } from '../ledger/interface.js'
import { AddressBook } from '../client/address-book.js'
import type { Source } from '../client/retrieve.js'
import { LevelLedger } from '../ledger/level.js'
import type { StateLedger } from '../ledger/state.js'
import { balances, logEntries, verifiedExport, verifyLedger, witnessedHeads, type BalanceJSON, type EntryJSON, type VerifyJSON, type WitnessedJSON } from '../ledger/views.js'
import type { AdminClient } from '../provider/admin.js'
import { sendJSON, type Router } from '../http/server.js'
import { Repo, type Database } from '../repo/repo.js'
import { RouterBook } from '../routing/routers.js'
import { PieceStore } from '../store/pieces.js'
import { findRoot } from '../store/roots.js'
import { dealDetail, listDeals, providerRows, routerRows, type DealDetail, type DealRow, type ProviderRow, type RouterRow } from './views.js'
import { toJSON } from './output.js'

export interface Reads {
  /** 'repo' when read from the database, 'daemon' through a running node */
  readonly via: 'repo' | 'daemon'
  ledgerLog (q: { deal?: string, kind?: string, limit?: number }): AsyncIterable<EntryJSON>
  ledgerVerify (q: { allSignatures?: boolean }): Promise<VerifyJSON>
  /** export lines of a ledger that verified first (ERR_LEDGER_BROKEN before any line) */
  ledgerExport (): Promise<AsyncIterable<string>>
  ledgerBalance (): Promise<BalanceJSON[]>
  /** the counterparties' heads this ledger witnessed (all, or one counterparty's) */
  ledgerWitnessed (q: { counterparty?: string }): AsyncIterable<WitnessedJSON>
  deals (): Promise<DealRow[]>
  deal (id: string): Promise<DealDetail>
  providers (): Promise<ProviderRow[]>
  routers (): Promise<RouterRow[]>
  sources (q: { root: string, named: string[] }): Promise<Source[]>
  /** the piece file holding the DAG of `root`, if the repo has one */
  rootPiece (q: { root: string }): Promise<string | null>
}

// the proof checks (and the audit client under them) load only when a ledger is verified
let audit: Promise<typeof import('../client/audit.js')> | undefined
const verifyProofEntry = async (entry: LedgerEntry): Promise<void> => { (await (audit ??= import('../client/audit.js'))).verifyProofEntry(entry) }
const verifyOptions = (allSignatures?: boolean): Parameters<typeof verifyLedger>[1] => ({ signatures: allSignatures === true ? 'all' : 'chain', verifyEntry: verifyProofEntry })

/** The views computed from an open repo (in this process, or in the node serving them). */
export function localReads (repo: Repo, db: Database, ledger: StateLedger): Reads {
  return {
    via: 'repo',
    ledgerLog: (q) => logEntries(ledger, q),
    ledgerVerify: async (q) => await verifyLedger(ledger, verifyOptions(q.allSignatures)),
    ledgerExport: async () => await verifiedExport(ledger, verifyOptions()),
    ledgerBalance: async () => await balances(ledger),
    ledgerWitnessed: (q) => witnessedHeads(ledger, q?.counterparty),
    deals: async () => await listDeals(ledger, db),
    deal: async (id) => await dealDetail(ledger, db, id),
    providers: async () => await providerRows(new AddressBook(db), ledger),
    routers: async () => await routerRows(new RouterBook(db)),
    // the retrieval client (CAR, UnixFS and decryption readers) loads only for `get`
    sources: async (q) => await (await import('../client/retrieve.js')).sourcesFor(repo, ledger, parseRoot(q.root), q.named),
    rootPiece: async (q) => {
      const cid = parseRoot(q.root)
      const record = await findRoot(db, cid.toV1().toString()) ?? await findRoot(db, cid.toString())
      return record === undefined ? null : new PieceStore(repo.piecesDir, repo.tmpDir).path(record.piece)
    }
  }
}

function parseRoot (text: string): CID {
  try {
    return CID.parse(text)
  } catch {
    throw new CairnError('ERR_INVALID_CID', `not a CID: ${JSON.stringify(text)}`)
  }
}

const STREAMS = new Set(['ledgerLog', 'ledgerExport', 'ledgerWitnessed'])
type Name = Exclude<keyof Reads, 'via'>
const NAMES: Name[] = ['ledgerLog', 'ledgerVerify', 'ledgerExport', 'ledgerBalance', 'ledgerWitnessed', 'deals', 'deal', 'providers', 'routers', 'sources', 'rootPiece']

/** The views through a running node's admin API: `GET /admin/v1/read/<name>?q=<JSON arguments>`. */
export function remoteReads (admin: AdminClient): Reads {
  const path = (name: Name, arg: unknown): string => `/admin/v1/read/${name}?q=${encodeURIComponent(JSON.stringify(arg ?? null))}`
  const call = async <T>(name: Name, arg?: unknown): Promise<T> => await admin.get<T>(path(name, arg), 600_000)
  return {
    via: 'daemon',
    ledgerLog: (q) => (async function * () { for await (const line of admin.lines(path('ledgerLog', q))) yield JSON.parse(line) as EntryJSON })(),
    ledgerWitnessed: (q) => (async function * () { for await (const line of admin.lines(path('ledgerWitnessed', q))) yield JSON.parse(line) as WitnessedJSON })(),
    ledgerVerify: async (q) => await call('ledgerVerify', q),
    ledgerExport: async () => await admin.linesOpened(path('ledgerExport', null)),
    ledgerBalance: async () => await call('ledgerBalance'),
    deals: async () => await call('deals'),
    deal: async (id) => await call('deal', id),
    providers: async () => await call('providers'),
    routers: async () => await call('routers'),
    sources: async (q) => await call('sources', q),
    rootPiece: async (q) => await call('rootPiece', q)
  }
}

/** Serves `reads` on an admin router (the node holding the repo). */
export function mountReads (router: Router, reads: Reads): void {
  router.on('GET', '/admin/v1/read/:name', async ({ res, params, url }) => {
    const name = params.name as Name
    if (!NAMES.includes(name)) throw new CairnError('ERR_NOT_FOUND', `no read view ${JSON.stringify(params.name)}`)
    let arg: unknown
    try {
      arg = JSON.parse(url.searchParams.get('q') ?? 'null')
    } catch {
      throw new CairnError('ERR_INVALID_JSON', 'q must be the JSON arguments of the view')
    }
    const fn = reads[name] as (a: unknown) => unknown
    if (!STREAMS.has(name)) {
      // plain JSON: no undefined, bigints and CIDs as strings (docs/json.md)
      sendJSON(res, 200, JSON.parse(toJSON(await fn.call(reads, arg) ?? null)), { 'Cache-Control': 'no-store' })
      return
    }
    const result = name === 'ledgerExport' ? await reads.ledgerExport() : fn.call(reads, arg) as AsyncIterable<unknown>
    const iterator = (result as AsyncIterable<unknown>)[Symbol.asyncIterator]()
    // the first item is produced before the status is sent, so an error there is still a coded answer
    let next = await iterator.next()
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Cache-Control': 'no-store' })
    while (next.done !== true) {
      await write(res, typeof next.value === 'string' ? next.value : JSON.stringify(next.value))
      next = await iterator.next()
    }
    res.end()
  })
}

async function write (res: ServerResponse, line: string): Promise<void> {
  if (!res.write(line + '\n')) await once(res, 'drain')
}

/**
 * Runs `fn` over the repo's views: from its database, or — when a running
 * node holds it (ERR_REPO_LOCKED) and published its admin API — through that
 * node. A repo held by a command without one stays ERR_REPO_LOCKED.
 */
export async function withReads<T> (repoPath: string, fn: (reads: Reads) => Promise<T>): Promise<T> {
  const repo = await Repo.open(repoPath)
  let db: Database
  try {
    db = await repo.db()
  } catch (err) {
    await repo.close()
    if (!isCairnError(err) || err.code !== 'ERR_REPO_LOCKED') throw err
    // the admin client (and the provider's HTTP modules under it) loads only for a held repo
    const { AdminClient, readAdminEndpoint } = await import('../provider/admin.js')
    const endpoint = await readAdminEndpoint(repoPath).catch(() => undefined)
    if (endpoint === undefined) throw err
    return await fn(remoteReads(new AdminClient(endpoint)))
  }
  try {
    return await fn(localReads(repo, db, await LevelLedger.open(db, repo.identity)))
  } finally {
    await repo.close()
  }
}
