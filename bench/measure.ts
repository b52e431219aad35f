/** Measuring whole commands: wall time and peak RSS of each in its own process. */
import { spawn } from 'node:child_process'
import { createWriteStream, existsSync } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createCipheriv } from 'node:crypto'
import { once } from 'node:events'

export const MiB = 1024 * 1024

export interface Measure { name: string, tool: string, bytes: number, seconds: number, mibPerSec: number, peakRssMiB: number | null, output: string, notes?: Record<string, number> }

/** Runs a command, returning wall time and peak RSS (via GNU time when present). */
export async function measure (name: string, tool: string, bytes: number, cmd: string, args: string[], env: Record<string, string> = {}): Promise<Measure> {
  const timeBin = '/usr/bin/time'
  const useTime = existsSync(timeBin)
  const rssFile = join(tmpdir(), `cairn-bench-rss-${process.pid}-${Math.random().toString(36).slice(2)}`)
  const [file, argv] = useTime ? [timeBin, ['-f', '%M', '-o', rssFile, cmd, ...args]] : [cmd, args]
  const started = process.hrtime.bigint()
  const child = spawn(file, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { output += d })
  const [code] = await once(child, 'close') as [number]
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  if (code !== 0) throw new Error(`${name}: ${cmd} ${args.join(' ')} exited ${code}`)
  let peakRssMiB: number | null = null
  if (useTime) {
    peakRssMiB = Math.round(Number((await readFile(rssFile, 'utf8')).trim().split('\n').at(-1)) / 1024)
    await rm(rssFile, { force: true })
  }
  return { name, tool, bytes, seconds, mibPerSec: bytes / MiB / seconds, peakRssMiB, output: output.trim() }
}

/** Deterministic incompressible bytes (AES-CTR keystream), written without holding the file. */
export async function generate (path: string, bytes: number): Promise<void> {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0))
  const out = createWriteStream(path)
  const zero = Buffer.alloc(4 * MiB)
  for (let left = bytes; left > 0; left -= zero.length) {
    const chunk = cipher.update(left >= zero.length ? zero : zero.subarray(0, left))
    if (!out.write(chunk)) await once(out, 'drain')
  }
  out.end()
  await once(out, 'finish')
}

/** `64M`, `1G`, `512K` or bytes. */
export function parseSize (text: string): number {
  const m = /^(\d+)([KMG]?)$/i.exec(text)
  if (m === null) throw new TypeError(`bad size '${text}', expected e.g. 64M or 1G`)
  return Number(m[1]) * ({ '': 1, K: 1024, M: MiB, G: 1024 * MiB } as Record<string, number>)[m[2].toUpperCase()]
}
