import test from 'ava'
import { mkdir, mkdtemp, readFile, readdir, rm, type FileHandle } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { pieceOf } from '../../proofs/index.js'
import { PieceStore, writePiece } from '../../src/store/pieces.js'
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

/** `bytes` cut into segments of `sizes` (cycled), each placed at its offset, in the order `order` gives (indices, the rest after in order). */
async function * placed (bytes: Uint8Array, sizes: number[], order: number[]): AsyncGenerator<Uint8Array | { bytes: Uint8Array, position: number }> {
  const segments: Array<{ bytes: Uint8Array, position: number }> = []
  for (let at = 0, i = 0; at < bytes.byteLength; i++) {
    const n = sizes[i % sizes.length]
    segments.push({ bytes: bytes.slice(at, at + n), position: at })
    at += n
  }
  const first = [...new Set(order.map(i => i % segments.length))]
  const rest = segments.map((_, i) => i).filter(i => !first.includes(i))
  let end = 0
  for (const i of [...first, ...rest]) {
    const segment = segments[i] as { bytes: Uint8Array, position: number }
    // a segment that goes on from the end comes as a plain chunk now and then, as a mixed source may give it
    yield segment.position === end && i % 2 === 0 ? segment.bytes : segment
    end = Math.max(end, segment.position + segment.bytes.byteLength)
  }
}

test('placed chunks in any order, leaving room and filling it later, make the same file and piece', async t => {
  await fc.assert(fc.asyncProperty(
    fc.array(fc.oneof(fc.integer({ min: 1, max: 70_000 }), fc.integer({ min: 500_000, max: 1_500_000 })), { minLength: 1, maxLength: 6 }),
    fc.integer({ min: 1, max: 3_000_000 }),
    fc.array(fc.nat(), { maxLength: 8 }),
    async (sizes, length, order) => {
      const { store: s, dir } = await store()
      try {
        const bytes = bytesOf(length, sizes[0])
        const staged = await s.stage(placed(bytes, sizes, order))
        t.is(staged.size, length)
        t.true(staged.piece.cid.equals((await pieceOf(bytes)).cid), `sizes ${JSON.stringify(sizes)}, order ${JSON.stringify(order)}`)
        const path = await staged.commit()
        t.deepEqual(new Uint8Array(await readFile(path)), bytes)
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    }), { numRuns: 8 })
})

test('placed chunks that leave room unfilled, land on bytes already placed or have no place are refused, leaving nothing behind', async t => {
  const { store: s, dir } = await store()
  try {
    const bytes = bytesOf(3000, 1)
    const source = async function * (items: Array<{ at: number, length: number }>): AsyncGenerator<{ bytes: Uint8Array, position: number }> {
      for (const { at, length } of items) yield { bytes: bytes.slice(at, at + length), position: at }
    }
    await t.throwsAsync(s.stage(source([{ at: 0, length: 100 }, { at: 500, length: 100 }])), { message: /100–500 .*unwritten/ })
    await t.throwsAsync(s.stage(source([{ at: 0, length: 100 }, { at: 500, length: 100 }, { at: 50, length: 100 }])), { message: /placed over bytes already placed/ })
    await t.throwsAsync(s.stage(source([{ at: 500, length: 100 }, { at: 450, length: 100 }])), { message: /placed over bytes already placed/ })
    await t.throwsAsync(s.stage(source([{ at: -1, length: 100 }])), { message: /bytes placed at -1/ })
    t.deepEqual(await readdir(join(dir, 'tmp')), [])
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('syncBehind: a datasync after each 64 MiB written, one at a time; a failing one fails the write', async t => {
  const MiB = 1024 * 1024
  /** a file handle in memory that counts datasyncs, the one it is told to fail rejecting with EIO */
  const handle = (failAt?: number): { handle: FileHandle, syncs: () => number, overlapped: () => boolean } => {
    let syncs = 0
    let running = 0
    let overlapped = false
    const fake = {
      write: async (bytes: Uint8Array, offset: number, length: number) => ({ bytesWritten: length, buffer: bytes.subarray(offset) }),
      datasync: async () => {
        if (++running > 1) overlapped = true
        syncs++
        await new Promise(resolve => setTimeout(resolve, 5))
        running--
        if (syncs === failAt) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })
      }
    }
    return { handle: fake as unknown as FileHandle, syncs: () => syncs, overlapped: () => overlapped }
  }
  const source = async function * (mib: number): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < mib; i++) yield new Uint8Array(MiB).fill(i)
  }
  const synced = handle()
  const { size } = await writePiece(synced.handle, source(200), { syncBehind: true })
  t.is(size, 200 * MiB)
  t.is(synced.syncs(), 3)
  t.false(synced.overlapped())
  const plain = handle()
  await writePiece(plain.handle, source(70))
  t.is(plain.syncs(), 0)
  await t.throwsAsync(writePiece(handle(1).handle, source(200), { syncBehind: true }), { code: 'EIO' } as never)
})
