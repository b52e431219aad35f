/**
 * `cairn ledger log|verify|export|balance|witness` (docs/ledger.md): read the
 * node's ledger in the repo's database. `verify --against <export>` also checks
 * a counterparty's exported ledger still holds every head of it this node
 * witnessed (docs/ledger.md "Witnessed heads").
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { once } from 'node:events'
import { CID } from 'multiformats/cid'
import { CairnError, fromSystemError } from '../errors.js'
import { ENTRY_KINDS, type EntryKind, type LedgerEntry } from '../ledger/interface.js'
import { isEntryKind } from '../ledger/entry.js'
import { LevelLedger } from '../ledger/level.js'
import { Repo, resolveRepoPath } from '../repo/repo.js'
import { verifyProofEntry } from '../client/audit.js'
import { checkWitnessed, type WitnessReport } from '../ledger/witness.js'
import { Output, parseIntegerFlag, toJSON, type GlobalOptions } from './output.js'

interface LedgerOptions extends GlobalOptions {
  deal?: string
  kind?: string
  limit?: string
  output?: string
  allSignatures?: boolean
  against?: string
}

const verbs: Record<string, (ledger: LevelLedger, out: Output, options: LedgerOptions) => Promise<void>> = { log, verify, export: exportLedger, balance, witness }

export default async function ledgerCommand (args: string[], options: LedgerOptions): Promise<void> {
  const verb = verbs[args[0]]
  if (verb === undefined) throw new CairnError('ERR_USAGE', `unknown ledger command ${JSON.stringify(args[0])}; expected log, verify, export, balance or witness`)
  const out = new Output(options)
  const repo = await Repo.open(resolveRepoPath(options.repo))
  try {
    const ledger = await LevelLedger.open(await repo.db(), repo.identity)
    await verb(ledger, out, options)
  } finally {
    await repo.close()
  }
}

async function log (ledger: LevelLedger, out: Output, options: LedgerOptions): Promise<void> {
  let kind: EntryKind | undefined
  if (options.kind !== undefined) {
    if (!isEntryKind(options.kind)) throw new CairnError('ERR_INVALID_ARGUMENT', `--kind must be one of ${ENTRY_KINDS.join(', ')}, got ${JSON.stringify(options.kind)}`)
    kind = options.kind
  }
  const limit = parseIntegerFlag(options.limit, '--limit', 'ERR_INVALID_ARGUMENT', 1, Number.MAX_SAFE_INTEGER)
  for await (const entry of ledger.log({ deal: options.deal, kind, limit })) {
    out.line(entryJSON(entry), () => humanEntry(entry))
  }
}

async function verify (ledger: LevelLedger, out: Output, options: LedgerOptions): Promise<void> {
  const started = performance.now()
  // every stored proof must still verify against its piece CID (SPEC §2 `ledger verify`)
  const report = await ledger.verify({ signatures: options.allSignatures === true ? 'all' : 'chain', verifyEntry: verifyProofEntry })
  const seconds = (performance.now() - started) / 1000
  const against = options.against === undefined ? undefined : await checkWitnessed(ledger, exportLines(options.against))
  const own = report.head === null
    ? 'ledger is empty'
    : `ledger verified: ${report.entries} entries, head ${report.head.seq} ${report.head.cid.toString()}, ${report.indexed ?? 0} index entries re-derived from the chain (${seconds.toFixed(2)} s)`
  out.result({ ok: true, entries: report.entries, indexed: report.indexed, head: report.head, signer: ledger.did, against }, () => against === undefined
    ? own
    : `${own}\n${againstLine(against)}`)
}

function againstLine (r: WitnessReport): string {
  if (r.checked === 0) return `the export of ${r.counterparty} (${r.entries} entries) verifies; this ledger witnessed none of its heads, so nothing more was checked`
  return `the export of ${r.counterparty} (${r.entries} entries) still holds all ${r.checked} of its heads this ledger witnessed (newest: entry ${r.newest?.seq ?? '?'} in ${r.newest?.via ?? '?'})`
}

/** The lines of an export file, or ERR_PATH_NOT_FOUND. */
async function * exportLines (path: string): AsyncIterable<string> {
  const input = createReadStream(path, { encoding: 'utf8' })
  try {
    for await (const line of createInterface({ input, crlfDelay: Infinity })) yield line
  } catch (err) {
    throw fromSystemError(err, path)
  } finally {
    input.destroy()
  }
}

/** The newest head of each counterparty this ledger witnessed. */
async function witness (ledger: LevelLedger, out: Output): Promise<void> {
  const latest = new Map<string, { counterparty: string, heads: number, seq: number, cid: string, via: string, entry: number }>()
  for await (const w of ledger.witnessed()) {
    const known = latest.get(w.did)
    latest.set(w.did, { counterparty: w.did, heads: (known?.heads ?? 0) + 1, seq: w.seq, cid: w.cid.toString(), via: w.via, entry: w.entry })
  }
  const rows = [...latest.values()]
  out.result(rows, () => rows.length === 0
    ? 'no counterparty heads witnessed yet'
    : table(['counterparty', 'heads', 'newest seq', 'newest cid', 'seen in'], rows.map(r => [r.counterparty, String(r.heads), String(r.seq), r.cid, `${r.via} (entry ${r.entry})`])))
}

async function exportLedger (ledger: LevelLedger, _out: Output, options: LedgerOptions): Promise<void> {
  const target = options.output === undefined || options.output === '-' ? undefined : options.output
  const stream = target === undefined ? process.stdout : createWriteStream(target, { flags: 'wx' })
  try {
    for await (const line of ledger.export()) {
      if (!stream.write(line + '\n')) await once(stream, 'drain')
    }
    if (target !== undefined) {
      stream.end()
      await once(stream, 'finish')
    }
  } catch (err) {
    if (target !== undefined) throw fromSystemError(err, target)
    throw err
  }
}

async function balance (ledger: LevelLedger, out: Output): Promise<void> {
  const balances = await ledger.balance()
  out.result(balances, () => balances.length === 0
    ? 'no payments recorded'
    : table(['counterparty', 'earned', 'paid', 'slashed to us', 'slashed from us', 'outstanding'],
      balances.map(b => [b.counterparty, b.earned, b.paid, b.slashedToUs, b.slashedFromUs, b.outstanding].map(String))))
}

/** Plain JSON for scripts: CIDs as strings, bigints as decimal strings, bytes as base64. */
function entryJSON (entry: LedgerEntry): unknown {
  return plain({ seq: entry.seq, cid: entry.cid, prev: entry.prev, at: new Date(entry.at).toISOString(), kind: entry.kind, ...entry.fields })
}

function plain (value: unknown): unknown {
  const cid = CID.asCID(value)
  if (cid !== null) return cid.toString()
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  if (Array.isArray(value)) return value.map(plain)
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]))
  return value
}

function humanEntry (entry: LedgerEntry): string {
  const fields = Object.entries(entry.fields).map(([k, v]) => `${k}=${short(v)}`).join(' ')
  return `${String(entry.seq).padStart(6)}  ${new Date(entry.at).toISOString()}  ${entry.kind.padEnd(18)} ${fields}`
}

function short (value: unknown): string {
  const text = typeof value === 'string' ? value : toJSON(plain(value))
  return text.length > 24 && /^(did:key:|baf)/.test(text) ? `${text.slice(0, 14)}…${text.slice(-6)}` : text
}

function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)))
  return [header, ...rows].map(r => r.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join('  ')).join('\n')
}
