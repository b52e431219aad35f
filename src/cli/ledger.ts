/**
 * `cairn ledger log|verify|export|balance|witness` (docs/ledger.md): read the
 * node's ledger in the repo's database, or through the running node that holds
 * it. `verify --against <export>` also checks a counterparty's exported ledger
 * still holds every head of it this node witnessed (docs/ledger.md "Witnessed
 * heads").
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { link, rm, stat } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { once } from 'node:events'
import { dirname, resolve } from 'node:path'
import { CairnError, fromSystemError } from '../errors.js'
import { CID } from 'multiformats/cid'
import { release, removeStaleTemps, removeTempsOnSignal, tempPathFor } from '../fs/temp.js'
import { checkKind, entryLine, type BalanceJSON, type VerifyJSON } from '../ledger/views.js'
import { checkWitnessed, type WitnessReport, type WitnessSource } from '../ledger/witness.js'
import { resolveRepoPath } from '../repo/repo.js'
import { withReads, type Reads } from './reads.js'
import { Output, parseIntegerFlag, type GlobalOptions } from './output.js'

interface LedgerOptions extends GlobalOptions {
  deal?: string
  kind?: string
  limit?: string
  output?: string
  allSignatures?: boolean
  against?: string
}

const verbs: Record<string, (reads: Reads, out: Output, options: LedgerOptions) => Promise<void>> = { log, verify, export: exportLedger, balance, witness }

export default async function ledgerCommand (args: string[], options: LedgerOptions): Promise<void> {
  const verb = verbs[args[0] ?? '']
  if (verb === undefined) throw new CairnError('ERR_USAGE', `unknown ledger command ${JSON.stringify(args[0])}; expected log, verify, export, balance or witness`)
  const out = new Output(options)
  // an export target is checked before the ledger is opened: a wrong path costs no verification
  const target = args[0] === 'export' ? await exportTarget(options.output) : undefined
  // from the repo, or through the running node that holds it
  await withReads(resolveRepoPath(options.repo), async (reads) => { await verb(reads, out, { ...options, output: target }) })
}

async function log (reads: Reads, out: Output, options: LedgerOptions): Promise<void> {
  const limit = parseIntegerFlag(options.limit, '--limit', 'ERR_INVALID_ARGUMENT', 1, Number.MAX_SAFE_INTEGER)
  checkKind(options.kind)
  for await (const entry of reads.ledgerLog({ deal: options.deal, kind: options.kind, limit })) {
    out.line(entry, () => entryLine(entry))
  }
}

async function verify (reads: Reads, out: Output, options: LedgerOptions): Promise<void> {
  const started = performance.now()
  // every stored proof must still verify against its piece CID (README "Ledger")
  const report = await reads.ledgerVerify({ allSignatures: options.allSignatures === true })
  const seconds = (performance.now() - started) / 1000
  const against = options.against === undefined ? undefined : await checkWitnessed(witnessSource(reads, report), exportLines(options.against))
  const own = report.head === null
    ? 'ledger is empty'
    : `ledger verified: ${report.entries} entries, head ${report.head.seq} ${report.head.cid}, ${report.indexed} index entries re-derived from the chain (${seconds.toFixed(2)} s)`
  out.result(against === undefined ? report : { ...report, against }, () => against === undefined ? own : `${own}\n${againstLine(against)}`)
}

/** The heads this node witnessed, read where its ledger is (the repo, or the node holding it). */
function witnessSource (reads: Reads, report: VerifyJSON): WitnessSource {
  return {
    did: report.signer,
    witnessed: async function * (counterparty?: string) {
      for await (const w of reads.ledgerWitnessed({ counterparty })) yield { did: w.counterparty, seq: w.seq, cid: CID.parse(w.cid), entry: w.entry, via: w.via }
    }
  }
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

/** Per counterparty: how many of its heads this ledger witnessed, and the newest. */
async function witness (reads: Reads, out: Output): Promise<void> {
  const latest = new Map<string, { counterparty: string, heads: number, seq: number, cid: string, via: string, entry: number }>()
  for await (const w of reads.ledgerWitnessed({})) {
    const known = latest.get(w.counterparty)
    latest.set(w.counterparty, { counterparty: w.counterparty, heads: (known?.heads ?? 0) + 1, seq: w.seq, cid: w.cid, via: w.via, entry: w.entry })
  }
  const rows = [...latest.values()]
  out.result(rows, () => rows.length === 0
    ? 'no counterparty heads witnessed yet'
    : table(['counterparty', 'heads', 'newest seq', 'newest cid', 'seen in'], rows.map(r => [r.counterparty, String(r.heads), String(r.seq), r.cid, `${r.via} (entry ${r.entry})`])))
}

/**
 * `-o FILE` must name a new file in an existing folder; `-` or nothing is stdout.
 * Returns the absolute target, or undefined for stdout.
 */
export async function exportTarget (output: string | undefined): Promise<string | undefined> {
  if (output === undefined || output === '-') return undefined
  const target = resolve(output)
  const existing = await stat(target).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined
    throw fromSystemError(err, target)
  })
  if (existing !== undefined) throw new CairnError('ERR_TARGET_EXISTS', `${output} already exists; ledger export writes a new file (remove it or choose another name)`)
  const folder = await stat(dirname(target)).catch(() => undefined)
  if (folder === undefined || !folder.isDirectory()) throw new CairnError('ERR_PATH_NOT_FOUND', `no folder ${dirname(target)} to write ${output} in`)
  return target
}

async function exportLedger (reads: Reads, _out: Output, options: LedgerOptions): Promise<void> {
  await writeExport(await reads.ledgerExport(), options.output)
}

/**
 * Writes export lines to stdout, or to a new file all at once: into a
 * temporary sibling, then linked into place (which, unlike a rename, never
 * replaces a file that appeared meanwhile), so a failure leaves no partial file.
 */
export async function writeExport (lines: AsyncIterable<string>, target: string | undefined): Promise<void> {
  if (target === undefined) {
    for await (const line of lines) {
      if (!process.stdout.write(line + '\n')) await once(process.stdout, 'drain')
    }
    return
  }
  removeTempsOnSignal()
  await removeStaleTemps(target)
  const temp = tempPathFor(target)
  const stream = createWriteStream(temp, { flags: 'wx', mode: 0o644 })
  stream.on('error', () => {})
  try {
    for await (const line of lines) {
      if (!stream.write(line + '\n')) await once(stream, 'drain')
    }
    stream.end()
    await once(stream, 'finish')
    await link(temp, target).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') throw new CairnError('ERR_TARGET_EXISTS', `${target} appeared while the ledger was exported; not replacing it`)
      throw err
    })
  } catch (err) {
    stream.destroy()
    throw err instanceof CairnError ? err : fromSystemError(err, target)
  } finally {
    await rm(temp, { force: true })
    release(temp)
  }
}

async function balance (reads: Reads, out: Output): Promise<void> {
  showBalances(await reads.ledgerBalance(), out)
}

export function showBalances (list: BalanceJSON[], out: Output): void {
  out.result(list, () => list.length === 0
    ? 'no payments recorded'
    : table(['counterparty', 'earned', 'paid', 'slashed to us', 'slashed from us', 'outstanding'],
      list.map(b => [b.counterparty, b.earned, b.paid, b.slashedToUs, b.slashedFromUs, b.outstanding])))
}

function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  return [header, ...rows].map(r => r.map((c, i) => i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)).join('  ')).join('\n')
}
