/**
 * `cairn ledger log|verify|export|balance` (SPEC §2 Ledger): read the node's
 * ledger in the repo's database.
 */
import { createWriteStream } from 'node:fs'
import { link, rm, stat } from 'node:fs/promises'
import { once } from 'node:events'
import { dirname, resolve } from 'node:path'
import { CairnError, fromSystemError } from '../errors.js'
import { release, removeStaleTemps, removeTempsOnSignal, tempPathFor } from '../fs/temp.js'
import { checkKind, entryLine, type BalanceJSON } from '../ledger/views.js'
import { resolveRepoPath } from '../repo/repo.js'
import { withReads, type Reads } from './reads.js'
import { Output, parseIntegerFlag, type GlobalOptions } from './output.js'

interface LedgerOptions extends GlobalOptions {
  deal?: string
  kind?: string
  limit?: string
  output?: string
  allSignatures?: boolean
}

const verbs: Record<string, (reads: Reads, out: Output, options: LedgerOptions) => Promise<void>> = { log, verify, export: exportLedger, balance }

export default async function ledgerCommand (args: string[], options: LedgerOptions): Promise<void> {
  const verb = verbs[args[0] ?? '']
  if (verb === undefined) throw new CairnError('ERR_USAGE', `unknown ledger command ${JSON.stringify(args[0])}; expected log, verify, export or balance`)
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
  // every stored proof must still verify against its piece CID (SPEC §2 `ledger verify`)
  const report = await reads.ledgerVerify({ allSignatures: options.allSignatures === true })
  const seconds = (performance.now() - started) / 1000
  out.result(report, () => report.head === null
    ? 'ledger is empty'
    : `ledger verified: ${report.entries} entries, head ${report.head.seq} ${report.head.cid} (${seconds.toFixed(2)} s)`)
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
