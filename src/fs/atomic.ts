/**
 * Writes that survive a crash at any moment: data goes to a temporary file in
 * the same directory, is fsync'd, renamed over the target, and the directory is
 * fsync'd so the rename itself is durable.
 */
import { open, rename, rm, mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fromSystemError } from '../errors.js'
import { release, tempPathFor } from './temp.js'

export { tempPathFor } from './temp.js'

export async function fsyncDir (dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try { await handle.sync() } finally { await handle.close() }
}

export async function writeFileAtomic (target: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  await mkdir(dirname(target), { recursive: true })
  const temp = tempPathFor(target)
  try {
    const handle = await open(temp, 'wx', mode)
    try {
      await handle.writeFile(data)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, target)
    await fsyncDir(dirname(target))
  } catch (err) {
    await rm(temp, { force: true })
    throw fromSystemError(err, target)
  } finally {
    release(temp)
  }
}

/** Moves a complete, fsync'd temporary file into place durably. */
export async function commitFile (temp: string, target: string): Promise<void> {
  await rename(temp, target)
  release(temp)
  await fsyncDir(dirname(target))
}

/**
 * Moves a complete temporary tree into place. An existing target is moved
 * aside first and removed only after the new tree is in place, so a crash
 * leaves the old tree or the new one at `target`, never a mix.
 */
export async function replaceTree (temp: string, target: string, exists: boolean): Promise<void> {
  if (exists) {
    const old = `${temp}.old`
    await rename(target, old)
    await rename(temp, target)
    release(temp)
    await rm(old, { recursive: true, force: true })
  } else {
    await rename(temp, target)
    release(temp)
  }
  await fsyncDir(dirname(target))
}
