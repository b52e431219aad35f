/**
 * `GET /piece` from a piece file: slices read with positional reads, each
 * taking its bytes from a budget shared by all responses and giving them back
 * once written; the bytes exact at any range, the budget whole again after
 * clients that finish, hang up or meet a short file.
 */
import test from 'ava'
import { randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, truncate, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { request } from 'undici'
import { ByteBudget, pieceHandler } from '../../src/provider/piece.js'
import type { PieceSource } from '../../src/provider/interface.js'
import { tempDir } from '../helpers/cli.js'

const PIECE = 'bafkzcibcaapao7vvnopbr3xbvhmrxr7anzwwbj6jglbhfs3lbnwhqnsl4c46dza'

async function serve (t: { teardown: (fn: () => Promise<void>) => void }, source: PieceSource, budget: ByteBudget): Promise<string> {
  const handle = pieceHandler(source, undefined, { budget })
  const server: Server = createServer((req, res) => {
    const controller = new AbortController()
    res.on('close', () => { if (!res.writableFinished) controller.abort(new Error('client went away')) })
    handle({ req, res, url: new URL(req.url ?? '/', 'http://x'), params: { pieceCid: PIECE }, signal: controller.signal }).catch(() => { res.destroy() })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  const address = server.address() as { port: number }
  return `http://127.0.0.1:${address.port}/piece/${PIECE}`
}

function fileSource (path: string, size: number): PieceSource {
  return {
    open: async () => ({
      size,
      createReadStream: (start, end) => createReadStream(path, { start, end }),
      openFile: async () => await open(path, 'r')
    })
  }
}

/** Waits (bounded) until the budget is whole again. */
async function whole (budget: ByteBudget): Promise<boolean> {
  for (let i = 0; i < 200 && budget.free !== budget.limit; i++) await new Promise(resolve => setTimeout(resolve, 10))
  return budget.free === budget.limit
}

test('ByteBudget: first come, first served; a waiter that aborts leaves the queue and takes nothing', async t => {
  const budget = new ByteBudget(100)
  await budget.take(60)
  const order: string[] = []
  const big = budget.take(80).then(() => order.push('big'))
  const controller = new AbortController()
  const aborted = budget.take(10, controller.signal).then(() => order.push('aborted'), (err: Error) => order.push(`rejected ${err.message}`))
  const small = budget.take(10).then(() => order.push('small'))
  // 40 free: the 10-byte takes wait behind the 80-byte one
  await new Promise(resolve => setImmediate(resolve))
  t.deepEqual(order, [])
  controller.abort(new Error('gone'))
  await aborted
  t.deepEqual(order, ['rejected gone'])
  budget.give(60)
  await Promise.all([big, small])
  t.deepEqual(order, ['rejected gone', 'big', 'small'])
  t.is(budget.free, 10)
  await t.throwsAsync(budget.take(101), { instanceOf: RangeError })
})

test('GET /piece from a file: exact bytes for ranges across slice boundaries and whole, many at once on a budget smaller than their sum', async t => {
  const dir = await tempDir()
  t.teardown(dir.cleanup)
  const path = join(dir.path, 'piece.car')
  const bytes = randomBytes(3 * 1024 * 1024 + 12345)
  await writeFile(path, bytes)
  const budget = new ByteBudget(512 * 1024)
  const url = await serve(t, fileSource(path, bytes.length), budget)
  const ranges = Array.from({ length: 40 }, (_, i) => {
    const start = (i * 262_139) % (bytes.length - 700_000)
    return { start, end: start + 1 + (i * 99_991) % 600_000 }
  })
  const results = await Promise.all([
    ...ranges.map(async ({ start, end }) => {
      const res = await request(url, { headers: { range: `bytes=${start}-${end}` } })
      return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()), want: bytes.subarray(start, end + 1) }
    }),
    ...[1, 2, 3].map(async () => {
      const res = await request(url)
      return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()), want: bytes }
    })
  ])
  for (const [i, r] of results.entries()) {
    t.is(r.status, i < ranges.length ? 206 : 200)
    t.true(r.body.equals(r.want), `response ${i}: ${r.body.length} bytes, expected ${r.want.length}`)
  }
  t.true(await whole(budget), `budget ${budget.free} of ${budget.limit} after all responses`)
})

test('GET /piece from a file: clients that hang up mid-body and a file shorter than stated give the whole budget back', async t => {
  const dir = await tempDir()
  t.teardown(dir.cleanup)
  const path = join(dir.path, 'piece.car')
  const bytes = randomBytes(4 * 1024 * 1024)
  await writeFile(path, bytes)
  const budget = new ByteBudget(1024 * 1024)
  const url = await serve(t, fileSource(path, bytes.length), budget)
  // twenty clients read a little of the whole piece and go away
  await Promise.all(Array.from({ length: 20 }, async () => {
    const controller = new AbortController()
    const res = await request(url, { signal: controller.signal })
    for await (const chunk of res.body) {
      t.true((chunk as Buffer).length > 0)
      controller.abort()
      break
    }
  }).map(async p => await p.catch(() => {})))
  t.true(await whole(budget), `budget ${budget.free} of ${budget.limit} after clients hung up`)

  // the file is cut short after the piece was opened at its full size: the response is cut off, nothing is kept
  await truncate(path, 1024 * 1024 + 7)
  const res = await request(url)
  t.is(res.statusCode, 200)
  await t.throwsAsync(res.body.arrayBuffer())
  t.true(await whole(budget), `budget ${budget.free} of ${budget.limit} after a short file`)

  // and the handler still serves what there is
  const ok = await request(url, { headers: { range: 'bytes=0-99' } })
  t.is(ok.statusCode, 206)
  t.true(Buffer.from(await ok.body.arrayBuffer()).equals(bytes.subarray(0, 100)))
})
