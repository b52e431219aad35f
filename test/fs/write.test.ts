/** writevAll: consecutive chunks written from a position with positional writevs, short writes continued. */
import test from 'ava'
import { open, readFile } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { writevAll } from '../../src/fs/write.js'
import { deterministicBytes, tempDir } from '../unixfs/helpers.js'

test('writevAll writes every chunk in order from the position, on a real file', async t => {
  const dir = await tempDir()
  t.teardown(dir.cleanup)
  const path = join(dir.path, 'out')
  const data = deterministicBytes(3 * 1024 * 1024 + 17, 'writev')
  const chunks = [data.subarray(0, 5), data.subarray(5, 1024 * 1024), data.subarray(1024 * 1024)]
  const handle = await open(path, 'w')
  try {
    await handle.write(Buffer.from('head'), 0, 4, 0)
    await writevAll(handle, chunks, 4)
  } finally {
    await handle.close()
  }
  t.deepEqual(await readFile(path), Buffer.concat([Buffer.from('head'), data]))
})

test('writevAll goes on after short writes, inside a chunk and at its end', async t => {
  const file = Buffer.alloc(40)
  const calls: number[] = []
  // writes at most 7 bytes a call, as a disk may write fewer bytes than asked
  const handle = {
    async writev (buffers: Uint8Array[], position: number) {
      calls.push(position)
      let n = 0
      for (const b of buffers) {
        const take = Math.min(b.byteLength, 7 - n)
        file.set(b.subarray(0, take), position + n)
        n += take
        if (n === 7) break
      }
      return { bytesWritten: n, buffers }
    }
  } as unknown as FileHandle
  const chunks = [Buffer.from('abcde'), Buffer.from('fghijklmnop'), Buffer.from('q'), Buffer.from('rstuvwxyz')]
  await writevAll(handle, chunks, 3)
  t.is(file.subarray(3, 29).toString(), 'abcdefghijklmnopqrstuvwxyz')
  t.deepEqual(calls, [3, 10, 17, 24])
})
