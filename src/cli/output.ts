/**
 * How commands talk to a person or a script: results to stdout (one JSON
 * document with --json), diagnostics to stderr, progress bars only when stderr
 * is a terminal and --no-progress was not given.
 */
import { CairnError, fromSystemError } from '../errors.js'

export interface GlobalOptions {
  repo?: string
  json?: boolean
  quiet?: boolean
  progress?: boolean
}

export class Output {
  readonly json: boolean
  readonly quiet: boolean
  readonly showProgress: boolean

  constructor (options: GlobalOptions, private readonly stdout: NodeJS.WritableStream = process.stdout, private readonly stderr: NodeJS.WriteStream = process.stderr) {
    this.json = options.json === true
    this.quiet = options.quiet === true
    this.showProgress = options.progress !== false && !this.json && !this.quiet && stderr.isTTY === true
  }

  /** The result: `human` lines unless --json, in which case `value` as one JSON document. */
  result (value: unknown, human: () => string): void {
    if (this.json) this.stdout.write(toJSON(value) + '\n')
    else {
      const text = human()
      if (text !== '') this.stdout.write(text.endsWith('\n') ? text : text + '\n')
    }
  }

  /** One line of a streaming result (--json: one object per line). */
  line (value: unknown, human: () => string): void {
    this.result(value, human)
  }

  info (message: string): void {
    if (!this.quiet && !this.json) this.stderr.write(message + '\n')
  }

  warn (message: string): void {
    this.stderr.write(`warning: ${message}\n`)
  }

  progress (label: string, total?: number): Progress {
    return this.showProgress ? new Bar(this.stderr, label, total) : nullProgress
  }
}

export interface Progress {
  update (done: number): void
  done (): void
}

const nullProgress: Progress = { update () {}, done () {} }

class Bar implements Progress {
  private last = 0
  private readonly started = Date.now()
  constructor (private readonly stream: NodeJS.WriteStream, private readonly label: string, private readonly total?: number) {}

  update (done: number): void {
    const now = Date.now()
    if (now - this.last < 100) return
    this.last = now
    this.stream.write(`\r${progressLine(this.label, done, (now - this.started) / 1000, this.total)}\x1b[K`)
  }

  done (): void { this.stream.write('\r\x1b[K') }
}

/** Writes bytes to stdout as they come, waiting while the pipe is full (`pack -o -`). */
export async function writeToStdout (source: AsyncIterable<Uint8Array>): Promise<void> {
  const stdout = process.stdout
  for await (const chunk of source) {
    if (stdout.write(chunk)) continue
    await new Promise<void>((resolve, reject) => {
      const drained = (): void => { stdout.off('error', failed); resolve() }
      // a reader that went away never drains the pipe; EPIPE itself stays as it is (bin/cairn.js: a closed pipe is no failure)
      const failed = (err: NodeJS.ErrnoException): void => { stdout.off('drain', drained); reject(err.code === 'EPIPE' ? err : fromSystemError(err, 'stdout')) }
      stdout.once('drain', drained)
      stdout.once('error', failed)
    })
  }
}

/** One progress line: bytes done (of the total when known), rate, and the time left at that rate. */
export function progressLine (label: string, done: number, seconds: number, total?: number): string {
  const perSecond = done / Math.max(seconds, 0.001)
  const rate = `${formatBytes(perSecond)}/s`
  if (total === undefined || total <= 0) return `${label} ${formatBytes(done)} ${rate}`
  const width = 30
  const filled = Math.min(width, Math.round(width * done / total))
  const eta = perSecond > 0 && done > 0 ? formatSeconds(Math.max(0, total - done) / perSecond) : '?'
  return `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${formatBytes(done)}/${formatBytes(total)} ${rate} eta ${eta}`
}

/** 42s, 3m05s, 2h07m */
export function formatSeconds (s: number): string {
  const whole = Math.ceil(s)
  if (whole < 60) return `${whole}s`
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`
  return `${Math.floor(whole / 3600)}h${String(Math.floor(whole % 3600 / 60)).padStart(2, '0')}m`
}

export function formatBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`
}

/** JSON with bigints as decimal strings and CIDs/bytes in their string forms. */
export function toJSON (value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key, v: unknown) {
    // the holder's own value: JSON.stringify has already applied a CID's toJSON ({"/": …}) to `v`
    const raw = this[key]
    if (typeof raw === 'bigint') return raw.toString()
    if (raw instanceof Uint8Array) return Buffer.from(raw).toString('base64')
    if (raw != null && typeof raw === 'object' && (raw as { asCID?: unknown }).asCID === raw) return String(raw)
    return v
  })
}

/** Parses a positive integer CLI flag, or throws the given usage code. */
export function parseIntegerFlag (value: unknown, name: string, code: 'ERR_INVALID_ARGUMENT' | 'ERR_INVALID_CHUNK_SIZE' | 'ERR_INVALID_MAX_LINKS', min: number, max: number): number | undefined {
  if (value === undefined) return undefined
  const text = String(value)
  if (!/^\d+$/.test(text)) throw new CairnError(code, `${name} must be a whole number, got ${JSON.stringify(text)}`)
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new CairnError(code, `${name} must be between ${min} and ${max}, got ${text}`)
  return n
}

/** A time span in ms: `500ms`, `30s`, `2m`, or a bare number of seconds. */
export function parseMillis (value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback
  const m = /^(\d+)\s*(ms|s|m)?$/i.exec(value.trim())
  if (m === null || Number(m[1]) <= 0) throw new CairnError('ERR_INVALID_ARGUMENT', `${flag} must be a duration such as 500ms, 30s or 2m, got ${JSON.stringify(value)}`)
  const unit = ({ ms: 1, s: 1000, m: 60_000, '': 1000 } as Record<string, number>)[(m[2] ?? '').toLowerCase()] as number
  return Number(m[1]) * unit
}
