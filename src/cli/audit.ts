/**
 * `cairn audit [<deal-id>…] [--all] [--challenges K]` (README "Client"):
 * challenge providers now, verify their proofs, record the results and settle
 * the period in the ledger. Exit 3 if any proof failed or was missed.
 */
import { CairnError, type ErrorCode } from '../errors.js'
import { LevelLedger } from '../ledger/level.js'
import { Repo, resolveRepoPath } from '../repo/repo.js'
import { activeDeals, auditDeal, loadDeal, type AuditDeal, type AuditOptions, type AuditResult } from '../client/audit.js'
import { expireIfEnded } from '../client/accounting.js'
import { auditAndRecord, type DataSetAuditRecord } from '../client/data-set-watch.js'
import { Output, parseIntegerFlag, parseMillis, type GlobalOptions } from './output.js'

export interface AuditFlags extends GlobalOptions {
  all?: boolean
  challenges?: string
  timeout?: string
  /** 'auto' or a duration (as --timeout) */
  deadline?: string
  retries?: string
  backoff?: string
  /** a PDP data set to audit at --provider (docs/pdp.md "Proving data sets") */
  dataSet?: string
  provider?: string
}

export { parseMillis } from './output.js'

export function auditOptions (flags: AuditFlags): AuditOptions {
  const deadline = flags.deadline?.trim().toLowerCase()
  return {
    challenges: parseIntegerFlag(flags.challenges, '--challenges', 'ERR_INVALID_ARGUMENT', 1, 1024),
    // --deadline auto: derived per deal (src/client/deadline.ts); --deadline <duration> is --timeout by another name
    ...(deadline === 'auto' ? { deadline: 'auto' as const } : {}),
    timeoutMs: parseMillis(deadline === undefined || deadline === 'auto' ? flags.timeout : flags.deadline, deadline === undefined ? '--timeout' : '--deadline', 30_000),
    retries: parseIntegerFlag(flags.retries, '--retries', 'ERR_INVALID_ARGUMENT', 0, 20),
    backoffMs: parseMillis(flags.backoff, '--backoff', 1000)
  }
}

export function resultLine (r: AuditResult): string {
  const money = r.settlement === undefined
    ? ''
    : r.settlement.kind === 'payment-accrued' ? `  paid ${r.settlement.amount}` : `  slashed ${r.settlement.amount}${r.settlement.dealFailed ? '  deal failed' : ''}`
  const why = r.code === undefined ? '' : `  ${r.code}: ${r.message ?? ''}`
  const within = r.deadline === undefined ? '' : ` of ${r.deadline.ms} auto`
  return `${r.outcome.padEnd(6)}  ${r.deal}  period ${r.period}  ${r.count} challenges  ${r.ms}${within} ms${money}${why}`
}

/** One data-set audit as `--json` prints it (docs/json.md). */
export function dataSetJson (r: DataSetAuditRecord): Record<string, unknown> {
  const a = r.audit
  return {
    dataSet: r.dataSet,
    provider: r.endpoint,
    providerId: r.provider,
    outcome: r.outcome,
    period: r.period,
    ...(r.code === undefined ? {} : { code: r.code, message: r.message }),
    ...(a === undefined ? {} : { seed: a.seed, challenges: a.challenges, pieces: a.pieces, leafCount: a.leafCount, ms: a.ms })
  }
}

/** One data-set audit as `audit --data-set` and `watch` print it. */
export function dataSetLine (r: DataSetAuditRecord): string {
  const a = r.audit
  const what = a === undefined ? '' : `  ${a.challenges} challenges over ${a.pieces} pieces  ${a.ms} ms`
  return `${r.outcome.padEnd(6)}  data set ${r.dataSet}  ${r.endpoint}${what}${r.code === undefined ? '' : `  ${r.code}: ${r.message ?? ''}`}`
}

/**
 * `cairn audit --data-set <id> --provider <url>`: one audit of a provider's PDP
 * data set, recorded in the ledger as `data-set-audited` (it feeds the
 * provider's reputation, and `watch` audits the data set from then on).
 */
async function auditOneDataSet (flags: AuditFlags & { dataSet: string }, out: Output): Promise<void> {
  if (flags.provider === undefined) throw new CairnError('ERR_USAGE', '--data-set needs --provider <url>, the PDP service that holds it')
  const id = parseIntegerFlag(flags.dataSet, '--data-set', 'ERR_INVALID_ARGUMENT', 1, Number.MAX_SAFE_INTEGER) as number
  const options = {
    challenges: parseIntegerFlag(flags.challenges, '--challenges', 'ERR_INVALID_ARGUMENT', 1, 1024) ?? 16,
    timeoutMs: parseMillis(flags.timeout, '--timeout', 30_000)
  }
  const repo = await Repo.open(resolveRepoPath(flags.repo))
  let result: DataSetAuditRecord
  try {
    const ledger = await LevelLedger.open(await repo.db(), repo.identity)
    result = await auditAndRecord(ledger, flags.provider, id, options)
  } finally {
    await repo.close()
  }
  out.line(dataSetJson(result), () => dataSetLine(result))
  if (result.outcome === 'missed' || result.outcome === 'ended') throw new CairnError((result.code ?? 'ERR_UNREACHABLE') as ErrorCode, `data set ${id} at ${result.endpoint}: ${result.message ?? result.outcome}`)
  if (result.outcome !== 'passed') throw new CairnError('ERR_AUDIT_FAILED', `data set ${result.dataSet} at ${result.endpoint} failed its audit: ${result.code ?? ''}`)
}

export default async function audit (ids: string[], flags: AuditFlags): Promise<void> {
  const out = new Output(flags)
  if (flags.dataSet !== undefined) {
    if (ids.length > 0 || flags.all === true) throw new CairnError('ERR_USAGE', '--data-set audits one PDP data set; it takes no deal ids and no --all')
    await auditOneDataSet({ ...flags, dataSet: flags.dataSet }, out)
    return
  }
  if (ids.length === 0 && flags.all !== true) throw new CairnError('ERR_USAGE', 'name the deals to audit, or pass --all for every active deal')
  const options = auditOptions(flags)
  const repo = await Repo.open(resolveRepoPath(flags.repo))
  let bad = 0
  try {
    const db = await repo.db()
    const ledger = await LevelLedger.open(db, repo.identity)
    const found: AuditDeal[] = ids.length > 0 ? await Promise.all([...new Set(ids)].map(async id => await loadDeal(ledger, id))) : await activeDeals(ledger)
    // --provider: challenges go to another node of the deal's provider (docs/cluster.md); proofs must still be signed by it
    const listed = flags.provider === undefined ? found : found.map(deal => ({ ...deal, endpoint: flags.provider as string }))
    for (const deal of listed) {
      if (deal.state !== 'active') throw new CairnError('ERR_DEAL_STATE', `deal ${deal.id.toString()} is ${deal.state}; only active deals are audited`)
    }
    // a deal past its end is not challenged (and no period past it paid): it is marked expired
    const now = Math.floor(Date.now() / 1000)
    const deals: AuditDeal[] = []
    for (const deal of listed) {
      if (now < deal.proposal.end) { deals.push(deal); continue }
      await expireIfEnded({ ledger, db }, deal, now)
      out.line({ deal: deal.id.toString(), outcome: 'expired', end: new Date(deal.proposal.end * 1000).toISOString() }, () => `expired ${deal.id.toString()}  ended ${new Date(deal.proposal.end * 1000).toISOString()}; not audited`)
    }
    if (listed.length === 0) out.info('no active deals to audit')
    const results = await Promise.all(deals.map(async deal => await auditDeal({ ledger, db, signer: repo.identity }, deal, {
      ...options,
      onAttempt: (a) => { if (a.outcome === 'unknown') out.info(`unknown ${a.deal}: ${a.message ?? ''} (retrying)`) }
    })))
    for (const r of results) {
      if (r.outcome !== 'passed') bad++
      out.line(r, () => resultLine(r))
    }
  } finally {
    await repo.close()
  }
  if (bad > 0) throw new CairnError('ERR_AUDIT_FAILED', `${bad} audit${bad === 1 ? '' : 's'} failed or missed`)
}
