/**
 * `cairn providers add <url> | ls | rm <did|url>` (SPEC §2 Client): the
 * client's address book. `add` fetches the provider's signed ask and keeps it
 * only when the signature verifies for the did it names.
 */
import { CairnError } from '../errors.js'
import { AddressBook, type ProviderEntry } from '../client/address-book.js'
import { LevelLedger } from '../ledger/level.js'
import type { ReputationSummary } from '../reputation/interface.js'
import { reputationsFromLedger } from '../reputation/ledger.js'
import { emptyReputation, summarize } from '../reputation/model.js'
import { Repo, resolveRepoPath } from '../repo/repo.js'
import { formatBytes, Output, type GlobalOptions } from './output.js'
import { withReads } from './reads.js'

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

export interface ProviderRow extends Record<string, unknown> {
  url: string
  did: string
  ask: Record<string, unknown>
  lastSeen: string
  reputation: Record<string, unknown> & { score: number, passes: number, failures: number, misses: number }
}

/** `providers ls` as JSON: the address book with each provider's reputation from this client's own audits (SPEC §6). */
export async function providerRows (book: AddressBook, ledger: LevelLedger): Promise<ProviderRow[]> {
  const list = (await book.list()).sort((a, b) => a.url.localeCompare(b.url))
  const reps = await reputationsFromLedger(ledger)
  const rep = (e: ProviderEntry): ReputationSummary => summarize(reps.get(e.did) ?? emptyReputation(e.did))
  const lastSeen = (e: ProviderEntry): number => Math.max(e.lastSeen, rep(e).lastSeen ?? 0)
  return list.map(e => ({ ...entryJSON(e), lastSeen: new Date(lastSeen(e)).toISOString(), reputation: reputationJSON(rep(e)) }) as ProviderRow)
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

export function reputationJSON (r: ReputationSummary): Record<string, unknown> {
  const out: Record<string, unknown> = { score: r.score, predicted: r.predicted, passes: r.passes, failures: r.failures, misses: r.misses, consecutiveFaults: r.consecutiveFaults }
  if (r.latencyMs !== undefined) out.latencyMs = Math.round(r.latencyMs)
  if (r.lastSeen !== undefined) out.lastAudit = new Date(r.lastSeen).toISOString()
  return out
}

async function rm (book: AddressBook, out: Output, args: string[]): Promise<void> {
  const key = args[0]
  if (key === undefined) throw new CairnError('ERR_USAGE', 'expected the did:key or URL of the provider to remove')
  const entry = await book.remove(key)
  out.result({ removed: entry.did, url: entry.url }, () => out.quiet ? '' : `removed ${entry.did} (${entry.url})`)
}

export function entryJSON (entry: ProviderEntry): Record<string, unknown> {
  return { url: entry.url, did: entry.did, ask: askJSON(entry.ask.payload), added: new Date(entry.added).toISOString(), lastSeen: new Date(entry.lastSeen).toISOString() }
}

/** An ask as JSON (docs/json.md): sizes as numbers of bytes, money as decimal strings, durations in seconds, its expiry as ISO 8601. */
export function askJSON (ask: ProviderEntry['ask']['payload']): Record<string, unknown> {
  return {
    provider: ask.provider,
    endpoint: ask.endpoint,
    pricePerGiBDay: ask.pricePerGiBDay.toString(),
    collateralPerGiB: ask.collateralPerGiB.toString(),
    minPieceSize: Number(ask.minPieceSize),
    maxPieceSize: Number(ask.maxPieceSize),
    freeCapacity: Number(ask.freeCapacity),
    maxDuration: ask.maxDuration,
    provingPeriod: ask.provingPeriod,
    challenges: ask.challenges,
    seq: ask.seq,
    expiry: new Date(ask.expiry * 1000).toISOString()
  }
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
