/**
 * What `cairn ledger log|verify|export|balance|witness` show, as plain JSON (CIDs as
 * strings, bigints as decimal strings, bytes as base64, times ISO 8601;
 * docs/json.md). The CLI computes them from the repo's ledger, or a running
 * node's admin API computes the same ones when that node holds the repo.
 */
import { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import { isEntryKind } from './entry.js'
import { ENTRY_KINDS, type Balance, type EntryKind, type Ledger, type LedgerEntry, type VerifyOptions, type WitnessedHead } from './interface.js'

export interface LogQuery {
  deal?: string
  kind?: string
  limit?: number
}

export interface EntryJSON {
  seq: number
  cid: string
  prev: string | null
  at: string
  kind: EntryKind
  [field: string]: unknown
}

export interface VerifyJSON {
  ok: true
  entries: number
  /** index entries re-derived from the chain and found equal (docs/ledger.md "Indexes") */
  indexed: number
  head: { seq: number, cid: string } | null
  signer: string
}

/** A counterparty's head this ledger witnessed (docs/ledger.md "Witnessed heads"). */
export interface WitnessedJSON {
  counterparty: string
  seq: number
  cid: string
  /** seq of this ledger's entry that holds the message */
  entry: number
  /** entry kind and field of the message, e.g. `deal-accepted.acceptance` */
  via: string
}

export interface BalanceJSON {
  counterparty: string
  earned: string
  paid: string
  slashedToUs: string
  slashedFromUs: string
  outstanding: string
}

/** `--kind` checked against the entry kinds. */
export function checkKind (kind: string | undefined): EntryKind | undefined {
  if (kind === undefined) return undefined
  if (!isEntryKind(kind)) throw new CairnError('ERR_INVALID_ARGUMENT', `--kind must be one of ${ENTRY_KINDS.join(', ')}, got ${JSON.stringify(kind)}`)
  return kind
}

/** Entries newest first, as plain JSON. */
export async function * logEntries (ledger: Ledger, query: LogQuery): AsyncGenerator<EntryJSON> {
  const kind = checkKind(query.kind)
  for await (const entry of ledger.log({ deal: query.deal, kind, limit: query.limit })) yield entryJSON(entry)
}

export async function verifyLedger (ledger: Ledger, options: VerifyOptions): Promise<VerifyJSON> {
  const report = await ledger.verify(options)
  return { ok: true, entries: report.entries, indexed: report.indexed ?? 0, head: report.head === null ? null : { seq: report.head.seq, cid: report.head.cid.toString() }, signer: ledger.did }
}

/** The heads this ledger witnessed, of one counterparty or all, by counterparty and then seq. */
export async function * witnessedHeads (ledger: Ledger, counterparty?: string): AsyncGenerator<WitnessedJSON> {
  for await (const w of ledger.witnessed(counterparty)) yield witnessedJSON(w)
}

export function witnessedJSON (w: WitnessedHead): WitnessedJSON {
  return { counterparty: w.did, seq: w.seq, cid: w.cid.toString(), entry: w.entry, via: w.via }
}

/**
 * The export lines, oldest first, of a ledger that verified first: a broken
 * ledger fails with ERR_LEDGER_BROKEN before the first line, so an export
 * never hands a third party a chain its own node would not vouch for.
 */
export async function verifiedExport (ledger: Ledger, options: VerifyOptions): Promise<AsyncIterable<string>> {
  await ledger.verify(options)
  return ledger.export()
}

export async function balances (ledger: Ledger): Promise<BalanceJSON[]> {
  return (await ledger.balance()).map(balanceJSON)
}

function balanceJSON (b: Balance): BalanceJSON {
  return { counterparty: b.counterparty, earned: String(b.earned), paid: String(b.paid), slashedToUs: String(b.slashedToUs), slashedFromUs: String(b.slashedFromUs), outstanding: String(b.outstanding) }
}

/** Plain JSON for scripts: the whole entry, CIDs as strings, bigints as decimal strings, bytes as base64. */
export function entryJSON (entry: LedgerEntry): EntryJSON {
  return plain({ seq: entry.seq, cid: entry.cid, prev: entry.prev, at: new Date(entry.at).toISOString(), kind: entry.kind, ...entry.fields }) as EntryJSON
}

export function plain (value: unknown): unknown {
  const cid = CID.asCID(value)
  if (cid !== null) return cid.toString()
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  if (Array.isArray(value)) return value.map(plain)
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]))
  return value
}

const HEAD = new Set(['seq', 'cid', 'prev', 'at', 'kind'])

/**
 * One line for a person: seq, time, kind, then each field summarised so the
 * line stays one line — identifiers shortened, a proof or a signed message
 * named by what it holds (`--json` gives them whole).
 */
export function entryLine (entry: EntryJSON): string {
  const fields = Object.entries(entry).filter(([k]) => !HEAD.has(k)).map(([k, v]) => `${k}=${summary(v)}`).join(' ')
  return `${String(entry.seq).padStart(6)}  ${entry.at}  ${entry.kind.padEnd(18)} ${fields}`.trimEnd()
}

function summary (value: unknown): string {
  if (typeof value === 'string') {
    if (/^(did:key:|baf|bag)/.test(value) && value.length > 24) return `${value.slice(0, 14)}…${value.slice(-6)}`
    const oneLine = /[\s"=]/.test(value) ? JSON.stringify(value) : value
    return oneLine.length > 48 ? `${oneLine.slice(0, 47)}…` : oneLine
  }
  if (Array.isArray(value)) return `[${value.length} item${value.length === 1 ? '' : 's'}]`
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>
    // a signed message (proposal, acceptance, status) or a proof: what it is, not its bytes
    if (o.payload !== null && typeof o.payload === 'object' && typeof o.signer === 'string') {
      const proofs = (o.payload as { proofs?: unknown }).proofs
      return Array.isArray(proofs)
        ? `<proof of ${proofs.length} leaves signed by ${summary(o.signer)}>`
        : `<signed by ${summary(o.signer)}>`
    }
    return `{${Object.keys(o).slice(0, 4).join(',')}${Object.keys(o).length > 4 ? ',…' : ''}}`
  }
  return String(value)
}
