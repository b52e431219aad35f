/** writevAll: consecutive chunks written from a position with positional writevs, short writes continued. */
import test from 'ava'
import { open, readFile } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { WRITE_UNIT, writevAll } from '../../src/fs/write.js'
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

test('writevAll asks for at most WRITE_UNIT bytes a call, splitting a chunk where it must', async t => {
  const data = deterministicBytes(3 * WRITE_UNIT + 1000, 'units')
  const file = Buffer.alloc(data.byteLength + 10)
  const sizes: number[] = []
  const handle = {
    async writev (buffers: Uint8Array[], position: number) {
      let n = 0
      for (const b of buffers) { file.set(b, position + n); n += b.byteLength }
      sizes.push(n)
      return { bytesWritten: n, buffers }
    }
  } as unknown as FileHandle
  // a small chunk, one larger than a unit, then the rest
  await writevAll(handle, [data.subarray(0, 10), data.subarray(10, WRITE_UNIT + 20), data.subarray(WRITE_UNIT + 20)], 10)
  t.true(file.subarray(10).equals(data))
  t.deepEqual(sizes, [WRITE_UNIT, WRITE_UNIT, WRITE_UNIT, 1000])
})
