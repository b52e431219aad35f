/**
 * `cairn deals [--state S] [--provider P]` and `cairn deals show <id>` (SPEC
 * §2 Client): the client's deals as its own ledger records them.
 */
import { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import { isDealState } from '../deal/state.js'
import { parseDealId, proposalFrom } from '../deal/proposal.js'
import type { Proposal } from '../deal/interface.js'
import { auditState, periodCount, periodOf } from '../client/accounting.js'
import type { Database } from '../repo/repo.js'
import type { DealRecord, LedgerEntry } from '../ledger/interface.js'
import { LevelLedger } from '../ledger/level.js'
import { resolveRepoPath } from '../repo/repo.js'
import { withReads } from './reads.js'
import { Output, toJSON, type GlobalOptions } from './output.js'
import { table } from './providers.js'

interface DealsOptions extends GlobalOptions {
  state?: string
  provider?: string
}

export interface DealRow {
  id: string
  state: string
  provider: string
  endpoint: string
  root: string
  pieceCid: string
  /** padded bytes */
  pieceSize: number
  passed: number
  failed: number
  missed: number
  proposed: string
  updated: string
  /** active deals: when the next proving period's audit is due (ISO time), or 'now' when the current one is not yet audited */
  nextAudit?: string
}

export default async function deals (args: string[], options: DealsOptions): Promise<void> {
  const out = new Output(options)
  const [verb, id] = args
  if (verb !== undefined && verb !== 'show') throw new CairnError('ERR_USAGE', `unknown deals command ${JSON.stringify(verb)}; expected \`cairn deals\` or \`cairn deals show <id>\``)
  if (options.state !== undefined && !isDealState(options.state)) throw new CairnError('ERR_INVALID_ARGUMENT', `--state must be a deal state (proposed, accepted, active, rejected, failed, …), got ${JSON.stringify(options.state)}`)
  if (verb === 'show' && id === undefined) throw new CairnError('ERR_USAGE', 'expected a deal id: cairn deals show <id>')
  await withReads(resolveRepoPath(options.repo), async (reads) => {
    if (verb === 'show') {
      showDeal(await reads.deal(id as string), out)
      return
    }
    const rows = (await reads.deals()).filter(r =>
      (options.state === undefined || r.state === options.state) &&
      (options.provider === undefined || r.provider === options.provider || r.endpoint === options.provider.replace(/\/+$/, '')))
    out.result(rows, () => {
      if (rows.length === 0) return out.quiet ? '' : 'no deals'
      if (out.quiet) return rows.map(r => r.id).join('\n')
      return table(['deal', 'state', 'provider', 'root', 'proofs', 'next audit'],
        rows.map(r => [r.id, r.state, r.endpoint, r.root, `${r.passed} passed, ${r.failed} failed, ${r.missed} missed`, r.nextAudit ?? '-']))
    })
  })
}

/** Every deal this client proposed, newest first. */
export async function listDeals (ledger: LevelLedger, db: Database, now = Math.floor(Date.now() / 1000)): Promise<DealRow[]> {
  const rows: DealRow[] = []
  for await (const entry of ledger.log({ kind: 'deal-proposed' })) {
    const record = await ledger.deal(entry.fields.deal as CID)
    if (record === undefined) continue
    const r = row(entry, record)
    const proposal = (entry.fields.proposal as { payload?: unknown } | undefined)?.payload
    if (record.state === 'active' && proposal !== undefined) r.nextAudit = await nextAudit(db, r.id, proposalFrom(proposal), now)
    rows.push(r)
  }
  return rows
}

/** SPEC §2 `deals`: the current period is due now until audited, then the next period's start. */
async function nextAudit (db: Database, id: string, proposal: Proposal, now: number): Promise<string | undefined> {
  const period = periodOf(proposal, now)
  if (period >= periodCount(proposal)) return undefined
  const { audited } = await auditState(db, id)
  if (period >= 0 && audited < period) return 'now'
  const next = proposal.start + (Math.max(period, audited) + 1) * proposal.provingPeriod
  return next + proposal.provingPeriod > proposal.end ? undefined : new Date(next * 1000).toISOString()
}

function row (proposed: LedgerEntry, record: DealRecord): DealRow {
  const f = proposed.fields
  return {
    id: String(f.deal),
    state: record.state,
    provider: String(f.provider),
    endpoint: String(f.endpoint ?? ''),
    root: String(f.payloadCid),
    pieceCid: String(f.pieceCid),
    pieceSize: Number(f.pieceSize),
    passed: record.passed,
    failed: record.failed,
    missed: record.missed,
    proposed: new Date(proposed.at).toISOString(),
    updated: new Date(record.at).toISOString()
  }
}

export interface DealDetail extends Partial<DealRow> {
  id: string
  state: string
  proposal?: Record<string, unknown>
  error?: { code: unknown, message: unknown }
  entries: Array<{ seq: number, cid: string, at: string, kind: string }>
}

/** `deals show <id>` as JSON (docs/json.md). */
export async function dealDetail (ledger: LevelLedger, db: Database, value: string): Promise<DealDetail> {
  const id = parseDealId(value)
  const record = await ledger.deal(id)
  if (record === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `no deal ${value} in this client's ledger`)
  const entries: LedgerEntry[] = []
  for await (const entry of ledger.log({ deal: id })) entries.push(entry)
  entries.reverse()
  const proposed = entries.find(e => e.kind === 'deal-proposed')
  const proposal = (proposed?.fields.proposal as { payload?: Record<string, unknown> } | undefined)?.payload
  const summary: Partial<DealRow> & { id: string, state: string } = proposed === undefined ? { id: id.toString(), state: record.state } : row(proposed, record)
  if (proposed !== undefined && proposal !== undefined && record.state === 'active') {
    summary.nextAudit = await nextAudit(db, id.toString(), proposalFrom(proposal), Math.floor(Date.now() / 1000))
  }
  const rejected = entries.find(e => e.kind === 'deal-rejected' || e.kind === 'deal-failed')
  return JSON.parse(toJSON({
    ...summary,
    proposal: proposal === undefined ? undefined : proposalJSON(proposalFrom(proposal)),
    error: rejected === undefined ? undefined : { code: rejected.fields.code, message: rejected.fields.message },
    entries: entries.map(e => ({ seq: e.seq, cid: e.cid.toString(), at: new Date(e.at).toISOString(), kind: e.kind }))
  })) as DealDetail
}

/** The signed proposal's terms under their signed names (docs/json.md: sizes as numbers of bytes, money as decimal strings, times ISO 8601). */
function proposalJSON (p: Proposal): Record<string, unknown> {
  return {
    pieceCid: p.pieceCid.toString(),
    pieceSize: Number(p.pieceSize),
    payloadCid: p.payloadCid.toString(),
    payloadSize: Number(p.payloadSize),
    client: p.client,
    provider: p.provider,
    label: p.label,
    start: new Date(p.start * 1000).toISOString(),
    end: new Date(p.end * 1000).toISOString(),
    pricePerGiBDay: p.pricePerGiBDay.toString(),
    providerCollateral: p.providerCollateral.toString(),
    clientCollateral: p.clientCollateral.toString(),
    provingPeriod: p.provingPeriod,
    challenges: p.challenges,
    nonce: p.nonce.toString()
  }
}

function showDeal (d: DealDetail, out: Output): void {
  out.result(d, () => {
    const lines = [
      `deal      ${d.id}`,
      `state     ${d.state}`
    ]
    if (d.provider !== undefined) {
      lines.push(`provider  ${d.provider}`, `endpoint  ${d.endpoint ?? ''}`, `root      ${d.root ?? ''}`, `piece     ${d.pieceCid ?? ''} (${String(d.pieceSize)} bytes padded)`)
    }
    const proposal = d.proposal
    if (proposal !== undefined) {
      lines.push(`price     ${String(proposal.pricePerGiBDay)} per GiB per day`,
        `term      ${String(proposal.start)} to ${String(proposal.end)}`,
        `proving   every ${String(proposal.provingPeriod)} s, ${String(proposal.challenges)} challenges`)
      if (proposal.label !== '' && proposal.label !== undefined) lines.push(`label     ${String(proposal.label)}`)
    }
    lines.push(`proofs    ${d.passed ?? 0} passed, ${d.failed ?? 0} failed, ${d.missed ?? 0} missed`)
    if (d.nextAudit !== undefined) lines.push(`next audit ${d.nextAudit}`)
    if (d.error !== undefined) lines.push(`error     ${String(d.error.code)}: ${String(d.error.message)}`)
    lines.push('ledger')
    for (const e of d.entries) lines.push(`  ${String(e.seq).padStart(5)}  ${e.at}  ${e.kind}`)
    return lines.join('\n')
  })
}
