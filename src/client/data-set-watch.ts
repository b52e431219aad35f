/**
 * A client's record of PDP data-set audits, and `cairn watch`'s schedule of
 * them (README "Client", docs/pdp.md "Auditing data sets").
 *
 * Every audit of a data set (`cairn audit --data-set`, or `watch`) is a
 * `data-set-audited` entry in the client's ledger naming the provider — its
 * did from its signed ask when it gives one, else its URL — so it counts in
 * the provider's reputation like a deal audit (src/reputation/ledger.ts).
 * The data sets a client audited once are the ones `watch` keeps auditing:
 * once per period (`dataSetPeriod`, counted from the unix epoch) at a random
 * moment in its first `window` fraction, until the provider says the data set
 * ended (terminated, expired, unknown), which is recorded as `ended`.
 */
import { CairnError, isCairnError } from '../errors.js'
import type { Ledger, LedgerEntry } from '../ledger/interface.js'
import { auditDataSet, type DataSetAudit, type DataSetAuditOptions } from '../pdp/audit.js'
import { ProviderClient, normaliseUrl } from './provider-client.js'

export type DataSetOutcome = 'passed' | 'failed' | 'missed' | 'ended'

/** The provider's codes that mean the data set is gone: no more audits. */
const ENDED = new Set(['ERR_DATA_SET_TERMINATED', 'ERR_DATA_SET_EXPIRED', 'ERR_DATA_SET_NOT_FOUND'])

export interface DataSetAuditRecord {
  dataSet: number
  endpoint: string
  provider: string
  outcome: DataSetOutcome
  period: number
  code?: string
  message?: string
  audit?: DataSetAudit
  seq: number
}

export interface DataSetWatchOptions extends DataSetAuditOptions {
  /** seconds between audits of one data set (default a day) */
  dataSetPeriod?: number
  now?: () => number
}

const DEFAULT_PERIOD = 86400

/** The provider's did from its signed ask, or its URL when it signs none (a PDP service that is not cairn). */
async function providerId (endpoint: string, timeoutMs: number): Promise<string> {
  try {
    return (await new ProviderClient(endpoint, { headersTimeoutMs: timeoutMs, bodyTimeoutMs: timeoutMs }).ask()).payload.provider
  } catch {
    return endpoint
  }
}

/**
 * Audits data set `id` at `endpoint` once and records the result in the
 * client's ledger: a proof that does not verify is `failed`, a provider that
 * does not answer `missed`, one that says the data set ended `ended`.
 */
export async function auditAndRecord (ledger: Ledger, endpoint: string, id: number, options: DataSetWatchOptions): Promise<DataSetAuditRecord> {
  const url = normaliseUrl(endpoint)
  const now = options.now?.() ?? Math.floor(Date.now() / 1000)
  const period = Math.floor(now / (options.dataSetPeriod ?? DEFAULT_PERIOD))
  const provider = await providerId(url, options.timeoutMs)
  let outcome: DataSetOutcome
  let audit: DataSetAudit | undefined
  let code: string | undefined
  let message: string | undefined
  try {
    audit = await auditDataSet(url, id, options)
    outcome = audit.outcome
    code = audit.code
    message = audit.message
  } catch (err) {
    if (!isCairnError(err)) throw err
    code = err.code
    message = err.message
    outcome = ENDED.has(err.code) ? 'ended' : 'missed'
  }
  const entry = await ledger.append('data-set-audited', {
    dataSet: id,
    endpoint: url,
    provider,
    outcome,
    period,
    ...(audit === undefined ? {} : { seed: audit.seed, count: audit.challenges, ms: audit.ms, leafCount: audit.leafCount }),
    ...(code === undefined ? {} : { code, message: (message ?? '').slice(0, 500) })
  })
  return { dataSet: id, endpoint: url, provider, outcome, period, code, message, audit, seq: entry.seq }
}

function recordOf (entry: LedgerEntry): DataSetAuditRecord {
  const f = entry.fields as { dataSet: number, endpoint: string, provider: string, outcome: DataSetOutcome, period: number, code?: string, message?: string }
  return { dataSet: f.dataSet, endpoint: f.endpoint, provider: f.provider, outcome: f.outcome, period: f.period, code: f.code, message: f.message, seq: entry.seq }
}

/** The newest audit of each data set the client recorded, newest first. */
export async function recordedDataSets (ledger: Pick<Ledger, 'log'>): Promise<DataSetAuditRecord[]> {
  const newest = new Map<string, DataSetAuditRecord>()
  for await (const entry of ledger.log({ kind: 'data-set-audited' })) {
    const r = recordOf(entry)
    const key = `${r.endpoint} ${r.dataSet}`
    if (!newest.has(key)) newest.set(key, r)
  }
  return [...newest.values()]
}

/**
 * One round of `watch`'s data-set schedule at `now`: every recorded data set
 * not ended and not yet audited in this period is audited once its moment
 * (drawn with `random` in the first `window` of the period) has come.
 */
export class DataSetSchedule {
  private readonly moments = new Map<string, { period: number, at: number }>()
  private readonly inFlight = new Set<string>()

  constructor (private readonly ledger: Ledger, private readonly options: DataSetWatchOptions & { window?: number, random?: () => number, once?: boolean }) {}

  /** Starts the audits due now; resolves when they are recorded, with their results. */
  async tick (nowMs: number): Promise<Array<DataSetAuditRecord | { dataSet: number, endpoint: string, error: unknown }>> {
    const periodSeconds = this.options.dataSetPeriod ?? DEFAULT_PERIOD
    if (!(periodSeconds > 0)) throw new CairnError('ERR_INVALID_ARGUMENT', `the data-set audit period must be positive, got ${periodSeconds}`)
    const period = Math.floor(nowMs / 1000 / periodSeconds)
    const due: DataSetAuditRecord[] = []
    for (const r of await recordedDataSets(this.ledger)) {
      const key = `${r.endpoint} ${r.dataSet}`
      if (r.outcome === 'ended' || r.period >= period || this.inFlight.has(key)) continue
      let moment = this.moments.get(key)
      if (moment?.period !== period) {
        const start = period * periodSeconds * 1000
        moment = { period, at: this.options.once === true ? nowMs : start + Math.floor((this.options.random ?? Math.random)() * (this.options.window ?? 0.8) * periodSeconds * 1000) }
        this.moments.set(key, moment)
      }
      if (nowMs >= moment.at) due.push(r)
    }
    return await Promise.all(due.map(async (r) => {
      const key = `${r.endpoint} ${r.dataSet}`
      this.inFlight.add(key)
      try {
        return await auditAndRecord(this.ledger, r.endpoint, r.dataSet, { ...this.options, now: () => Math.floor(nowMs / 1000) })
      } catch (err) {
        return { dataSet: r.dataSet, endpoint: r.endpoint, error: err }
      } finally {
        this.inFlight.delete(key)
      }
    }))
  }
}
