/**
 * Measuring whole commands (wall time and peak RSS of each in its own
 * process), the figures' spread, and the state of the machine they ran on.
 */
import { spawn } from 'node:child_process'
import { createWriteStream, existsSync, readFileSync } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { cpus, freemem, loadavg, release, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { createCipheriv } from 'node:crypto'
import { once } from 'node:events'

export const MiB = 1024 * 1024

export interface Measure {
  name: string
  tool: string
  bytes: number
  seconds: number
  mibPerSec: number
  peakRssMiB: number | null
  /** stdout, trimmed (with `stdout: 'count'`, empty: the bytes are only counted) */
  output: string
  /** bytes the command wrote to stdout */
  stdoutBytes: number
  notes?: Record<string, number>
}

export interface MeasureOptions {
  env?: Record<string, string>
  /** 'capture' (default) keeps stdout as text; 'count' only counts it, for commands that write data there */
  stdout?: 'capture' | 'count'
}

/** Runs a command, returning wall time and peak RSS (via GNU time when present). */
export async function measure (name: string, tool: string, bytes: number, cmd: string, args: string[], options: MeasureOptions = {}): Promise<Measure> {
  const timeBin = '/usr/bin/time'
  const useTime = existsSync(timeBin)
  const rssFile = join(tmpdir(), `cairn-bench-rss-${process.pid}-${Math.random().toString(36).slice(2)}`)
  const [file, argv] = useTime ? [timeBin, ['-f', '%M', '-o', rssFile, cmd, ...args]] : [cmd, args]
  const started = process.hrtime.bigint()
  const child = spawn(file, argv, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'inherit'] })
  let output = ''
  let stdoutBytes = 0
  const capture = options.stdout !== 'count'
  child.stdout.on('data', (d: Buffer) => {
    stdoutBytes += d.length
    if (capture) output += d.toString('utf8')
  })
  const [code] = await once(child, 'close') as [number]
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  let peakRssMiB: number | null = null
  try {
    if (code !== 0) throw new Error(`${name}: ${cmd} ${args.join(' ')} exited ${code}`)
    if (useTime) peakRssMiB = Math.round(Number((await readFile(rssFile, 'utf8')).trim().split('\n').at(-1)) / 1024)
  } finally {
    if (useTime) await rm(rssFile, { force: true })
  }
  return { name, tool, bytes, seconds, mibPerSec: bytes / MiB / seconds, peakRssMiB, output: output.trim(), stdoutBytes }
}

/** Deterministic incompressible bytes (AES-CTR keystream), written without holding the file. */
export async function generate (path: string, bytes: number, seed = 7): Promise<void> {
  const out = createWriteStream(path)
  for (const chunk of keystream(bytes, seed)) {
    if (!out.write(chunk)) await once(out, 'drain')
  }
  out.end()
  await once(out, 'finish')
}

/** The same AES-CTR keystream `generate` writes, in chunks of at most 4 MiB. */
export function * keystream (bytes: number, seed = 7, chunk = 4 * MiB): Generator<Buffer> {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16, 0))
  const zero = Buffer.alloc(chunk)
  for (let left = bytes; left > 0; left -= zero.length) yield cipher.update(left >= zero.length ? zero : zero.subarray(0, left))
}

/** `64M`, `1G`, `512K` or bytes. */
export function parseSize (text: string): number {
  const m = /^(\d+)([KMG]?)$/i.exec(text)
  if (m === null) throw new TypeError(`bad size '${text}', expected e.g. 64M or 1G`)
  return Number(m[1]) * ({ '': 1, K: 1024, M: MiB, G: 1024 * MiB } as Record<string, number>)[m[2].toUpperCase()]
}

/** `256 MiB`, `1 GiB`. */
export function sizeLabel (bytes: number): string {
  return bytes >= 1024 * MiB ? `${+(bytes / 1024 / MiB).toFixed(2)} GiB` : `${+(bytes / MiB).toFixed(2)} MiB`
}

/** The middle of repeated figures with their extremes: what every figure of the bench reports. */
export interface Spread { median: number, min: number, max: number }

export function spread (values: number[]): Spread {
  if (values.length === 0) throw new RangeError('no values to summarise')
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
  return { median, min: sorted[0], max: sorted[sorted.length - 1] }
}

/** The p-quantile (0…1) of values, nearest rank. */
export function percentile (values: number[], p: number): number {
  if (values.length === 0) throw new RangeError('no values')
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]
}

/** `12.3 (10.1–14.0)`: a spread as the tables print it. */
export function formatSpread (s: Spread, digits = 1, unit = ''): string {
  return s.min === s.max ? `${s.median.toFixed(digits)}${unit}` : `${s.median.toFixed(digits)}${unit} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)}${unit})`
}

/** What the machine is: printed with the table and stored in results.json. */
export interface Machine { cpu: string, cpus: number, node: string, kernel: string, memoryMiB: number }

/** How busy the machine is now: taken before and after every section. */
export interface MachineState { at: string, loadAverage: [number, number, number], freeMemoryMiB: number, availableMemoryMiB: number | null }

export function machine (): Machine {
  return { cpu: cpus()[0]?.model ?? 'unknown', cpus: cpus().length, node: process.version, kernel: release(), memoryMiB: Math.round(totalmem() / MiB) }
}

export function machineState (): MachineState {
  const [one, five, fifteen] = loadavg().map(n => Math.round(n * 100) / 100)
  // MemFree is memory nothing uses; MemAvailable adds what the kernel would reclaim (page cache), as
  // a process that needs memory sees it. (os.freemem() is MemAvailable on Linux.)
  let meminfo = ''
  try { meminfo = readFileSync('/proc/meminfo', 'utf8') } catch {}
  const field = (name: string): number | null => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(meminfo)
    return m === null ? null : Math.round(Number(m[1]) / 1024)
  }
  return { at: new Date().toISOString(), loadAverage: [one, five, fifteen], freeMemoryMiB: field('MemFree') ?? Math.round(freemem() / MiB), availableMemoryMiB: field('MemAvailable') }
}

/** Peak and current resident set of a process (VmHWM, VmRSS in /proc/<pid>/status), MiB; null where /proc is missing. */
export function processMemory (pid: number): { peakRssMiB: number, rssMiB: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? NaN)
    return { peakRssMiB: Math.round(kb('VmHWM') / 1024), rssMiB: Math.round(kb('VmRSS') / 1024) }
  } catch {
    return null
  }
}
