/**
 * `cairn providers add <url> | ls | rm <did|url>` (README "Client"): the
 * client's address book. `add` fetches the provider's signed ask and keeps it
 * only when the signature verifies for the did it names.
 */
import { CairnError } from '../errors.js'
import { AddressBook, type ProviderEntry } from '../client/address-book.js'
import { Repo, resolveRepoPath } from '../repo/repo.js'
import { formatBytes, Output, type GlobalOptions } from './output.js'
import { withReads } from './reads.js'
import { entryJSON, type ProviderRow } from './views.js'

const verbs: Record<string, (book: AddressBook, out: Output, args: string[], repo: Repo) => Promise<void>> = { add, rm }

export default async function providers (args: string[], options: GlobalOptions): Promise<void> {
  const [verb, ...rest] = args
  const out = new Output(options)
  // ls only reads: it also works beside a running node, through its admin API
  if (verb === 'ls') {
    await withReads(resolveRepoPath(options.repo), async (reads) => { showProviders(await reads.providers(), out) })
    return
  }
  const run = verbs[verb ?? '']
  if (run === undefined) throw new CairnError('ERR_USAGE', `unknown providers command ${JSON.stringify(verb)}; expected add, ls or rm`)
  const repo = await Repo.open(resolveRepoPath(options.repo))
  try {
    await run(new AddressBook(await repo.db()), out, rest, repo)
  } finally {
    await repo.close()
  }
}

async function add (book: AddressBook, out: Output, args: string[]): Promise<void> {
  const url = args[0]
  if (url === undefined) throw new CairnError('ERR_USAGE', 'expected the provider URL, e.g. cairn providers add http://127.0.0.1:7470')
  const entry = await book.add(url)
  out.result(entryJSON(entry), () => out.quiet ? entry.did : `added ${entry.did} at ${entry.url}\n${describeAsk(entry)}`)
}

function showProviders (rows: ProviderRow[], out: Output): void {
  out.result(rows, () => {
    if (rows.length === 0) return out.quiet ? '' : 'no providers; add one with `cairn providers add <url>`'
    if (out.quiet) return rows.map(e => e.url).join('\n')
    return table(['url', 'did', 'price/GiB/day', 'free', 'score', 'passed', 'failed', 'missed', 'last seen'], rows.map(e => {
      const r = e.reputation
      return [e.url, e.did, String(e.ask.pricePerGiBDay), formatBytes(Number(e.ask.freeCapacity)), r.score.toFixed(3), String(r.passes), String(r.failures), String(r.misses), ago(Date.parse(e.lastSeen))]
    }))
  })
}

async function rm (book: AddressBook, out: Output, args: string[]): Promise<void> {
  const key = args[0]
  if (key === undefined) throw new CairnError('ERR_USAGE', 'expected the did:key or URL of the provider to remove')
  const entry = await book.remove(key)
  out.result({ removed: entry.did, url: entry.url }, () => out.quiet ? '' : `removed ${entry.did} (${entry.url})`)
}

export function describeAsk (entry: { url: string, ask: ProviderEntry['ask'] }): string {
  const a = entry.ask.payload
  return [
    `provider       ${a.provider}`,
    `endpoint       ${a.endpoint}`,
    `price          ${a.pricePerGiBDay} per GiB per day`,
    `collateral     ${a.collateralPerGiB} per GiB`,
    `piece size     ${formatBytes(Number(a.minPieceSize))} to ${formatBytes(Number(a.maxPieceSize))} (padded)`,
    `free capacity  ${formatBytes(Number(a.freeCapacity))}`,
    `max duration   ${days(a.maxDuration)}`,
    `proving period ${a.provingPeriod} s, up to ${a.challenges} challenges`,
    `ask            seq ${a.seq}, expires ${new Date(a.expiry * 1000).toISOString()}, signature verified`
  ].join('\n')
}

function days (seconds: number): string {
  return seconds % 86400 === 0 ? `${seconds / 86400} d` : `${seconds} s`
}

function ago (ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000))
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.round(s / 60)}m ago`
  if (s < 86400) return `${Math.round(s / 3600)}h ago`
  return `${Math.round(s / 86400)}d ago`
}

export function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  return [header, ...rows].map(r => r.map((c, i) => (c ?? '').padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n')
}
