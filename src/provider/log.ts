/**
 * The provider's structured log, backed by pino: one JSON object per line
 * (`--log-format json`: level, ISO time, pid, event, then the event's fields —
 * deal, client, piece, size, ms, status where they apply) or the same record
 * as one readable line (`text`, the default). Every part of the provider logs
 * through the `Logger` signature `(event, fields) => void`
 * (src/provider/interface.ts); the level of an event comes from the table
 * below unless the fields name one (`level: 'warn'`).
 */
import { pino, stdTimeFunctions } from 'pino'
import type { Logger } from './interface.js'

export type LogFormat = 'text' | 'json'
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

/** Events that are not plain information. */
const LEVELS: Record<string, LogLevel> = {
  error: 'error',
  'piece-corrupt': 'error',
  // the deal lifecycle's tick failed: deals stay unexpired and pieces unremoved until one succeeds
  'lifecycle-error': 'error',
  'upload-failed': 'warn',
  'request-rejected': 'warn',
  'warm-up-failed': 'warn',
  'request-aborted': 'debug'
}

/** Keys pino writes itself; an event field of the same name is kept under `<name>_`. */
const RESERVED = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'event'])

export interface LoggerOptions {
  format?: LogFormat
  level?: LogLevel
  /** default: stderr */
  destination?: { write: (line: string) => unknown }
}

export interface StructuredLogger extends Logger {
  readonly level: LogLevel
}

export function createLogger (options: LoggerOptions = {}): StructuredLogger {
  const dest = options.destination ?? process.stderr
  const format = options.format ?? 'text'
  const sink = format === 'json' ? { write: (line: string) => { dest.write(line) } } : { write: (line: string) => { dest.write(textLine(line)) } }
  const logger = pino({
    level: options.level ?? 'info',
    base: { pid: process.pid },
    timestamp: stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) }
  }, sink)
  const log = ((event: string, fields: Record<string, unknown> = {}) => {
    const { level: asked, ...rest } = fields
    const level = typeof asked === 'string' && asked in LEVEL_RANK ? asked as LogLevel : LEVELS[event] ?? 'info'
    const record: Record<string, unknown> = { event }
    for (const [k, v] of Object.entries(rest)) if (v !== undefined) record[RESERVED.has(k) ? `${k}_` : k] = v
    logger[level](record, event)
  }) as StructuredLogger
  Object.defineProperty(log, 'level', { value: options.level ?? 'info' })
  return log
}

const LEVEL_RANK: Record<LogLevel, number> = { debug: 20, info: 30, warn: 40, error: 50 }

/** `2025-01-01T00:00:00.000Z info  upload-stored deal=bafy… bytes=4096 ms=12` */
function textLine (json: string): string {
  const { level, time, event, pid: _pid, msg: _msg, ...fields } = JSON.parse(json) as Record<string, unknown>
  const parts = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' && !/[\s"]/.test(v) && v !== '' ? v : JSON.stringify(v)}`)
  return `${String(time)} ${String(level).padEnd(5)} ${String(event)}${parts.length > 0 ? ' ' + parts.join(' ') : ''}\n`
}
