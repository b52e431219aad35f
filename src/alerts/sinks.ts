/**
 * Where alerts go: a command run with the alert on stdin, or an HTTP POST.
 * Both are bounded in time, so a hung receiver costs one timeout per alert,
 * and both report failure as ERR_ALERT_FAILED for the caller to log: an
 * alert that cannot be delivered must not stop the audits it is about.
 */
import { spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { request, undici } from '../lazy/undici.js'
import { CairnError } from '../errors.js'
import type { Alert, AlertSink } from './interface.js'

export const DEFAULT_ALERT_TIMEOUT_MS = 10_000
/** the tail of a failing command's stderr kept for the log line */
const STDERR_TAIL = 2048

/** The alert's main fields as environment variables, for commands that do not parse JSON. */
export function alertEnv (alert: Alert): Record<string, string> {
  const env: Record<string, string> = {
    CAIRN_ALERT_EVENT: alert.event,
    CAIRN_ALERT_ID: alert.id,
    CAIRN_ALERT_SOURCE: alert.source,
    CAIRN_ALERT_KIND: alert.kind,
    CAIRN_ALERT_SUMMARY: alert.summary,
    CAIRN_ALERT_STARTED_AT: alert.startedAt
  }
  if (alert.provider !== undefined) env.CAIRN_ALERT_PROVIDER = alert.provider
  if (alert.deal !== undefined) env.CAIRN_ALERT_DEAL = alert.deal
  if (alert.piece !== undefined) env.CAIRN_ALERT_PIECE = alert.piece
  if (alert.endedAt !== undefined) env.CAIRN_ALERT_ENDED_AT = alert.endedAt
  return env
}

/**
 * `--alert-exec CMD`: `/bin/sh -c CMD` with the alert as one JSON line on
 * stdin and in CAIRN_ALERT_* variables. Exit 0 is delivery; any other exit,
 * or still running after `timeoutMs` (its whole process group is killed),
 * is ERR_ALERT_FAILED.
 */
export function execSink (command: string, timeoutMs = DEFAULT_ALERT_TIMEOUT_MS): AlertSink {
  if (typeof command !== 'string' || command.trim() === '') throw new CairnError('ERR_INVALID_ARGUMENT', '--alert-exec needs a command')
  return {
    name: 'exec',
    deliver: async (alert) => {
      await new Promise<void>((resolve, reject) => {
        // its own process group, so a timeout also ends what the shell started
        const child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, ...alertEnv(alert) }, detached: true })
        let stderr = ''
        let timedOut = false
        const timer = setTimeout(() => {
          timedOut = true
          try { process.kill(-(child.pid as number), 'SIGKILL') } catch { child.kill('SIGKILL') }
        }, timeoutMs)
        child.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_TAIL) })
        // a command that does not read its stdin closes the pipe: not a failure
        child.stdin.on('error', () => {})
        child.stdin.end(JSON.stringify(alert) + '\n')
        child.on('error', (err) => {
          clearTimeout(timer)
          reject(new CairnError('ERR_ALERT_FAILED', `alert command could not start: ${err.message}`))
        })
        child.on('close', (code, signal) => {
          clearTimeout(timer)
          if (timedOut) reject(new CairnError('ERR_ALERT_FAILED', `alert command still running after ${timeoutMs} ms; killed`))
          else if (code === 0) resolve()
          else reject(new CairnError('ERR_ALERT_FAILED', `alert command exited with ${code === null ? `signal ${String(signal)}` : `status ${code}`}${stderr.trim() === '' ? '' : `: ${stderr.trim()}`}`))
        })
      })
    }
  }
}

export interface WebhookOptions {
  /** per attempt: connect, headers and body */
  timeoutMs?: number
  /** attempts in all, the first included */
  attempts?: number
  /** wait before the second attempt, doubled after each */
  backoffMs?: number
}

/** A URL an alert may be posted to: http or https. */
export function parseWebhookUrl (value: string, flag = '--alert-webhook'): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new CairnError('ERR_INVALID_ARGUMENT', `${flag} must be an http:// or https:// URL, got ${JSON.stringify(value)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CairnError('ERR_INVALID_ARGUMENT', `${flag} must be an http:// or https:// URL, got ${JSON.stringify(value)}`)
  return url
}

/** Statuses worth another attempt: the receiver is busy or broken now, not refusing this alert. */
function retryable (status: number): boolean {
  return status === 408 || status === 429 || status >= 500
}

/**
 * `--alert-webhook URL`: POST the alert as JSON. A 2xx is delivery; a network
 * error, a timeout, 408, 429 or 5xx is tried again after a doubling backoff,
 * up to `attempts` in all; any other status is final. The longest it can take
 * is attempts × timeout plus the backoffs. `X-Cairn-Alert` carries
 * `<id> <event>` so a receiver can drop a duplicate without parsing the body.
 */
export function webhookSink (target: string | URL, options: WebhookOptions = {}): AlertSink {
  const url = typeof target === 'string' ? parseWebhookUrl(target) : target
  const timeoutMs = options.timeoutMs ?? DEFAULT_ALERT_TIMEOUT_MS
  const attempts = options.attempts ?? 3
  const backoffMs = options.backoffMs ?? 1000
  if (!Number.isSafeInteger(attempts) || attempts < 1) throw new RangeError(`attempts must be a whole number ≥ 1, got ${attempts}`)
  const shown = `${url.origin}${url.pathname}`
  return {
    name: `webhook ${shown}`,
    deliver: async (alert) => {
      const body = JSON.stringify(alert)
      let last = ''
      // loaded before the first attempt's timeout starts, which is the receiver's alone
      await undici()
      for (let i = 0; i < attempts; i++) {
        if (i > 0) await sleep(backoffMs * 2 ** (i - 1))
        try {
          const res = await request(url, {
            method: 'POST',
            body,
            headers: { 'content-type': 'application/json', 'user-agent': 'cairn-watch', 'x-cairn-alert': `${alert.id} ${alert.event}` },
            headersTimeout: timeoutMs,
            bodyTimeout: timeoutMs,
            signal: AbortSignal.timeout(timeoutMs)
          })
          await res.body.dump()
          if (res.statusCode >= 200 && res.statusCode < 300) return
          last = `HTTP ${res.statusCode}`
          if (!retryable(res.statusCode)) break
        } catch (err) {
          last = (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (err as Error).message
        }
      }
      throw new CairnError('ERR_ALERT_FAILED', `webhook ${shown} did not take the alert: ${last}`)
    }
  }
}
