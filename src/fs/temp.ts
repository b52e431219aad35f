/**
 * Temporary files and trees written beside their targets (`.name.<pid>.<hex>.tmp`)
 * before an atomic rename. A command that is interrupted removes the ones it
 * was writing (SIGINT/SIGTERM); one killed outright leaves them, and the next
 * run onto the same target removes those whose process is gone, which the pid
 * in the name tells.
 */
import { rmSync } from 'node:fs'
import { readdir, rm } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { basename, dirname, join } from 'node:path'

const live = new Set<string>()

/** A temporary sibling of `target`, removed if this process is interrupted, until `release`d. */
export function tempPathFor (target: string): string {
  const path = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  live.add(path)
  return path
}

/** Tracks another temporary path (a spool file, a scratch directory) the same way. */
export function track (path: string): string {
  live.add(path)
  return path
}

/** The path is committed or removed: no longer this process's to clean up. */
export function release (path: string): void {
  live.delete(path)
}

/** Removes every tracked path now, synchronously (from a signal handler). */
export function removeTrackedSync (): void {
  for (const path of live) {
    try { rmSync(path, { recursive: true, force: true }) } catch {}
  }
  live.clear()
}

function alive (pid: number): boolean {
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: the process exists but is someone else's
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Whether a temporary file's writer is gone: names carry the writer's pid
 * (`piece-<pid>-<hex>.car`, `.name.<pid>.<hex>.tmp`); a name without one is
 * an older release's, whose writer is gone too. Another process's files in a
 * shared folder (the repo's tmp/ while a provider uploads) are kept.
 */
export function writerGone (name: string): boolean {
  const m = /(?:^|[.-])(\d{1,10})[.-][0-9a-f]{8,}(?:[.-]|$)/.exec(name)
  return m === null || !alive(Number(m[1]))
}

/** `<prefix>-<pid>-<hex><suffix>`: a temporary name `writerGone` can judge. */
export function tempName (prefix: string, suffix = ''): string {
  return `${prefix}-${process.pid}-${randomBytes(8).toString('hex')}${suffix}`
}

/**
 * Removes temporary siblings of `target` left by runs that are gone: ours
 * (`.name.<pid>.<hex>.tmp` with no live process of that pid) and older
 * releases' (`.name.<hex>.tmp`). Returns how many were removed.
 */
export async function removeStaleTemps (target: string): Promise<number> {
  const name = basename(target)
  let entries: string[]
  try {
    entries = await readdir(dirname(target))
  } catch {
    return 0
  }
  let removed = 0
  const prefix = `.${name}.`
  for (const entry of entries) {
    if (!entry.startsWith(prefix) || !entry.endsWith('.tmp')) continue
    const m = /^(?:(\d+)\.)?[0-9a-f]{12}\.tmp$/.exec(entry.slice(prefix.length))
    if (m === null) continue
    if (m[1] !== undefined && alive(Number(m[1]))) continue
    await rm(join(dirname(target), entry), { recursive: true, force: true })
    removed++
  }
  return removed
}

let installed = false

/**
 * For commands that write temporary files: on SIGINT or SIGTERM remove them,
 * then end with that signal as the process would have without a handler.
 */
export function removeTempsOnSignal (): void {
  if (installed) return
  installed = true
  const handler = (signal: NodeJS.Signals): void => {
    removeTrackedSync()
    process.off('SIGINT', handler)
    process.off('SIGTERM', handler)
    process.kill(process.pid, signal)
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
}
