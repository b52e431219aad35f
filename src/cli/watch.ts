/**
 * `cairn watch` (README "Client"): audits every active deal once per proving
 * period until SIGINT/SIGTERM (or `--once`, `--until`, `--max-periods`), one
 * line per result.
 */
import { CairnError, isCairnError, type ErrorCode } from '../errors.js'
import { repairIfNeeded } from '../reputation/repair-deal.js'
import { LevelLedger } from '../ledger/level.js'
import { Repo, resolveRepoPath } from '../repo/repo.js'
import { watch } from '../client/watch.js'
import { auditOptions, dataSetJson, dataSetLine, parseMillis, resultLine, type AuditFlags } from './audit.js'
import { Output, parseIntegerFlag } from './output.js'
import { localReads, mountReads } from './reads.js'
import { startAdmin, type RunningAdmin } from '../provider/admin.js'
import { createLogger } from '../provider/log.js'
import { AlertMonitor, DEFAULT_EXPIRING_MS } from '../alerts/monitor.js'
import { DEFAULT_ALERT_TIMEOUT_MS, execSink, webhookSink } from '../alerts/sinks.js'
import type { AlertSink } from '../alerts/interface.js'
import { parseDuration } from '../config/values.js'
import { DEFAULT_POLICY } from '../reputation/repair.js'

interface WatchFlags extends AuditFlags {
  once?: boolean
  until?: string
  maxPeriods?: string
  tick?: string
  dataSetPeriod?: string
  alertExec?: string
  alertWebhook?: string
  alertTimeout?: string
  alertExpiring?: string
  alertBelow?: string
}

/** The sinks and thresholds of `--alert-*` (docs/monitoring.md); undefined when no alert goes anywhere. */
function alertFlags (flags: WatchFlags): { sinks: AlertSink[], expiringMs: number, forecastBelow: number } | undefined {
  const timeoutMs = parseMillis(flags.alertTimeout, '--alert-timeout', DEFAULT_ALERT_TIMEOUT_MS)
  const expiringMs = parseDuration(flags.alertExpiring, '--alert-expiring', DEFAULT_EXPIRING_MS / 1000) * 1000
  const forecastBelow = flags.alertBelow === undefined ? DEFAULT_POLICY.threshold : Number(flags.alertBelow)
  if (!(forecastBelow >= 0 && forecastBelow <= 1) || flags.alertBelow?.trim() === '') throw new CairnError('ERR_INVALID_ARGUMENT', `--alert-below must be a probability from 0 to 1, got ${JSON.stringify(flags.alertBelow)}`)
  const sinks: AlertSink[] = []
  if (flags.alertExec !== undefined) sinks.push(execSink(flags.alertExec, timeoutMs))
  if (flags.alertWebhook !== undefined) sinks.push(webhookSink(flags.alertWebhook, { timeoutMs }))
  return sinks.length === 0 ? undefined : { sinks, expiringMs, forecastBelow }
}

/** `--until`: an ISO time, unix seconds, or a duration from now (`90s`, `10m`). */
function parseUntil (value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  if (/^\d{9,}$/.test(value)) return Number(value) * 1000
  const at = Date.parse(value)
  if (!Number.isNaN(at) && /\d{4}-\d{2}-\d{2}/.test(value)) return at
  try {
    return Date.now() + parseMillis(value, '--until', 0)
  } catch {
    throw new CairnError('ERR_INVALID_ARGUMENT', `--until must be an ISO time, unix seconds, or a duration such as 10m, got ${JSON.stringify(value)}`)
  }
}

export default async function watchCommand (_args: string[], flags: WatchFlags): Promise<void> {
  const out = new Output(flags)
  const options = auditOptions(flags)
  const until = parseUntil(flags.until)
  const maxPeriods = parseIntegerFlag(flags.maxPeriods, '--max-periods', 'ERR_INVALID_ARGUMENT', 1, Number.MAX_SAFE_INTEGER)
  const tickMs = parseMillis(flags.tick, '--tick', 1000)
  const alerting = alertFlags(flags)
  const repo = await Repo.open(resolveRepoPath(flags.repo))
  const controller = new AbortController()
  let admin: RunningAdmin | undefined
  let alerts: AlertMonitor | undefined
  const stop = (): void => { controller.abort() }
  // repairs that could not be made: each is reported as it happens, and the run exits non-zero
  const unrepaired: Array<{ deal: string, code: ErrorCode, message: string }> = []
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  try {
    const db = await repo.db()
    const ledger = await LevelLedger.open(db, repo.identity)
    // while watch holds the repo, read commands (ledger, deals, providers ls, get) reach it here
    if (alerting !== undefined) {
      alerts = await AlertMonitor.open(db, ledger, {
        ...alerting,
        log: (level, message) => { if (level === 'warn') out.warn(message) }
      })
    }
    admin = await startAdmin(repo.path, undefined, createLogger({ level: 'error' }), 0, { mount: (router) => { mountReads(router, localReads(repo, db, ledger)) } })
    const summary = await watch({ ledger, db, signer: repo.identity }, {
      ...options,
      once: flags.once === true,
      until,
      maxPeriods,
      tickMs,
      signal: controller.signal,
      onAttempt: (a) => { if (a.outcome === 'unknown') out.info(`unknown ${a.deal}: ${a.message ?? ''} (retrying)`) },
      onResult: (r) => { out.line(r, () => resultLine(r)) },
      onDeals: (deals) => { alerts?.deals(deals) },
      dataSets: { challenges: Number(options.challenges ?? 16), timeoutMs: options.timeoutMs ?? 30_000, dataSetPeriod: parseDuration(flags.dataSetPeriod, '--data-set-period', 86400) },
      onDataSet: (r) => {
        if ('error' in r) out.warn(`audit of data set ${r.dataSet} at ${r.endpoint} not recorded: ${(r.error as Error).message}`)
        else out.line(dataSetJson(r), () => dataSetLine(r))
      },
      onExpired: (deal) => { out.line({ deal, outcome: 'expired' }, () => `expired ${deal}`) },
      onError: (deal, err) => { out.warn(`audit of ${deal} not recorded: ${(err as Error).message}`) },
      // README "Reputation, placement and repair": a deal whose provider faults twice in a row or is predicted to fail is re-replicated
      afterResult: async (deal, result) => {
        alerts?.audit(deal, result)
        try {
          const repaired = await repairIfNeeded({ repo, ledger }, deal)
          if (repaired !== undefined) {
            alerts?.repaired(repaired.deal, repaired.replacement.id, repaired.replacement.url)
            out.line({ deal: repaired.deal, outcome: 'repaired', reason: repaired.reason, source: repaired.source, replacement: repaired.replacement, ...(repaired.reencrypted === true ? { reencrypted: true } : {}) }, () =>
              `repaired ${repaired.deal}: ${repaired.reason}; ${repaired.reencrypted === true ? 'encrypted afresh from the plaintext of' : 'copied from'} ${repaired.source} to deal ${repaired.replacement.id} at ${repaired.replacement.url}`)
          }
        } catch (err) {
          // never quiet: a piece that cannot be repaired is a piece about to be lost
          const code: ErrorCode = isCairnError(err) ? err.code : 'ERR_INTERNAL'
          alerts?.unrepaired(deal, err)
          unrepaired.push({ deal: deal.id.toString(), code, message: (err as Error).message })
          out.line({ deal: deal.id.toString(), outcome: 'unrepaired', code, message: (err as Error).message }, () => `UNREPAIRED ${deal.id.toString()}: ${code}`)
          process.stderr.write(`error ${code}: repair of ${deal.id.toString()} failed: ${(err as Error).message}\n`)
        }
      }
    })
    const deals = [...new Set(unrepaired.map(u => u.deal))]
    // the alerts already raised are delivered (each within its bound) before they are counted
    await alerts?.flush()
    const sent = { opened: alerts?.counts.opened ?? 0, resolved: alerts?.counts.resolved ?? 0, delivered: alerts?.counts.sent ?? 0, failed: alerts?.counts.failed ?? 0 }
    // --json: the summary is the last line, as a script reads it
    if (out.json) out.line({ summary: { ...summary, unrepaired: deals.length, alerts: sent } }, () => '')
    else out.info(`watch stopped: ${summary.audits} audits (${summary.passed} passed, ${summary.failed} failed, ${summary.missed} missed), ${summary.expired} deals expired, ${summary.dealsFailed} deals failed${deals.length > 0 ? `, ${deals.length} not repaired` : ''}${alerts === undefined ? '' : `; alerts: ${sent.opened} opened, ${sent.resolved} resolved, ${sent.delivered} deliveries made, ${sent.failed} failed`}`)
    const first = unrepaired[0]
    if (first !== undefined) {
      throw new CairnError(first.code, `${deals.length} deal${deals.length === 1 ? '' : 's'} needed a repair that could not be made (${deals.join(', ')}); the first: ${first.message}`)
    }
  } finally {
    // alerts already raised are delivered (each within its bound) before the repo closes
    await alerts?.flush()
    await admin?.close()
    process.removeListener('SIGINT', stop)
    process.removeListener('SIGTERM', stop)
    await repo.close()
  }
}
