import test from 'ava'
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { pieceOf } from '../../proofs/index.js'
import { PieceStore } from '../../src/store/pieces.js'
import { bytesOf } from '../provider/fixtures.js'

async function store (): Promise<{ store: PieceStore, dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-store-'))
  await mkdir(join(dir, 'pieces'))
  await mkdir(join(dir, 'tmp'))
  return { store: new PieceStore(join(dir, 'pieces'), join(dir, 'tmp')), dir }
}

async function * cut (bytes: Uint8Array, sizes: number[]): AsyncGenerator<Uint8Array> {
  let at = 0
  for (let i = 0; at < bytes.byteLength; i++) {
    const n = sizes[i % sizes.length]
    // a fresh buffer each time, as the store asks of its source
    yield bytes.slice(at, at + n)
    at += n
  }
}

test('chunks of any size, small ones gathered and large ones written as they are, make the same file and piece', async t => {
  await fc.assert(fc.asyncProperty(
    fc.array(fc.oneof(fc.integer({ min: 1, max: 70_000 }), fc.integer({ min: 500_000, max: 1_500_000 })), { minLength: 1, maxLength: 6 }),
    fc.integer({ min: 1, max: 5_000_000 }),
    async (sizes, length) => {
      const { store: s, dir } = await store()
      try {
        const bytes = bytesOf(length, sizes[0])
        const staged = await s.stage(cut(bytes, sizes))
        t.is(staged.size, length)
        t.true(staged.piece.cid.equals((await pieceOf(bytes)).cid))
        const path = await staged.commit()
        t.deepEqual(new Uint8Array(await readFile(path)), bytes)
        t.deepEqual(await readdir(join(dir, 'tmp')), [])
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    }), { numRuns: 12 })
})
