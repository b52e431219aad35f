/**
 * The slab GET (src/http/slab-get.ts) against hand-written `node:net` servers
 * on 127.0.0.1:0, so that each test says exactly which bytes go out and how
 * they are cut across writes: the three body framings, chunked coding split
 * at every awkward place, the head, undici's failure codes, and the slabs'
 * release. Consecutive views of one slab must lie end to end, which is what
 * lets the CAR reader use blocks where they lie.
 */
import test, { type ExecutionContext } from 'ava'
import { randomBytes } from 'node:crypto'
import { createServer as createHttpServer } from 'node:http'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { ProviderClient } from '../../src/client/provider-client.js'
import { slabGet, type SlabBody } from '../../src/http/slab-get.js'
import { rejectsCode } from '../helpers/errors.js'

const KiB = 1024
const MiB = 1024 * KiB

/** What the server does on a connection once the request head has come. */
type Script = (socket: Socket, request: string) => Promise<void> | void

interface Peer {
  url: string
  /** the first connection's request head */
  request: Promise<string>
  /** settles when the first connection has closed */
  closed: Promise<void>
}

async function listening (server: Server): Promise<number> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

async function closing (server: Server): Promise<void> {
  await new Promise<void>(resolve => server.close(() => resolve()))
}

/** Runs `run` against a raw TCP server that answers every request with `script`; every socket and the server are closed after. */
async function withServer (script: Script, run: (peer: Peer) => Promise<void>): Promise<void> {
  const sockets = new Set<Socket>()
  let firstRequest!: (request: string) => void
  let firstClosed!: () => void
  const request = new Promise<string>(resolve => { firstRequest = resolve })
  const closed = new Promise<void>(resolve => { firstClosed = resolve })
  const server = createServer(socket => {
    const first = sockets.size === 0
    sockets.add(socket)
    socket.setNoDelay(true)
    // the client resets connections on purpose in several tests
    socket.on('error', () => {})
    socket.on('close', () => { if (first) firstClosed() })
    let head = ''
    const onData = (data: Buffer): void => {
      head += data.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      socket.off('data', onData)
      if (first) firstRequest(head)
      Promise.resolve().then(async () => await script(socket, head)).catch(() => socket.destroy())
    }
    socket.on('data', onData)
  })
  const port = await listening(server)
  try {
    await run({ url: `http://127.0.0.1:${port}`, request, closed })
  } finally {
    for (const socket of sockets) socket.destroy()
    await closing(server)
  }
}

/** A status line and header lines, with the empty line that ends them. */
function head (status: string, ...lines: string[]): string {
  return `HTTP/1.1 ${status}\r\n${lines.map(line => `${line}\r\n`).join('')}\r\n`
}

/** `body` in chunked coding, in chunks of `sizes` (taken in turn), sizes in upper-case hex, ending with `trailer` lines. */
function chunked (body: Uint8Array, sizes: number[], trailer = ''): Buffer {
  const parts: Uint8Array[] = []
  for (let at = 0, i = 0; at < body.length; i++) {
    const n = Math.min(sizes[i % sizes.length], body.length - at)
    parts.push(Buffer.from(`${n.toString(16).toUpperCase()}\r\n`), body.subarray(at, at + n), Buffer.from('\r\n'))
    at += n
  }
  parts.push(Buffer.from(`0\r\n${trailer}\r\n`))
  return Buffer.concat(parts)
}

/** `bytes` cut into pieces of `lengths` (taken in turn). */
function cut (bytes: Uint8Array, lengths: number[]): Uint8Array[] {
  const pieces: Uint8Array[] = []
  for (let at = 0, i = 0; at < bytes.length; i++) {
    pieces.push(bytes.subarray(at, at + lengths[i % lengths.length]))
    at += lengths[i % lengths.length]
  }
  return pieces
}

/** Writes `pieces` one at a time, each once the last has left and `gapMs` have passed, so that the client mostly reads them apart. */
async function dribble (socket: Socket, pieces: Array<Uint8Array | string>, gapMs = 1): Promise<void> {
  for (const piece of pieces) {
    if (socket.destroyed) return
    await new Promise<void>(resolve => socket.write(piece, () => resolve()))
    await sleep(gapMs)
  }
}

const bytewise = (text: string): string[] => [...text]

/** How many consecutive views of one slab do not lie end to end (0 for a body a block parser can use in place). */
function misplaced (views: Uint8Array[]): number {
  let count = 0
  for (let i = 1; i < views.length; i++) {
    const prev = views[i - 1]
    const view = views[i]
    if (view.buffer === prev.buffer && view.byteOffset !== prev.byteOffset + prev.byteLength) count++
  }
  return count
}

/** Reads the body whole, checking that its views are non-empty, lie end to end, and are all held; its bytes and views. */
async function readAll (t: ExecutionContext, body: SlabBody): Promise<{ bytes: Buffer, views: Uint8Array[] }> {
  const views: Uint8Array[] = []
  for await (const view of body) views.push(view)
  t.is(misplaced(views), 0, 'consecutive views of one slab lie end to end')
  t.true(views.every(view => view.byteLength > 0 && body.holds(view)), 'every view is non-empty and of a slab still held')
  return { bytes: Buffer.concat(views), views }
}

/** Reads the body until it fails; the bytes that came before and what it threw. */
async function readUntilFailure (body: AsyncIterable<Uint8Array>): Promise<{ bytes: Buffer, err: unknown }> {
  const views: Uint8Array[] = []
  try {
    for await (const view of body) views.push(view)
  } catch (err) {
    return { bytes: Buffer.concat(views), err }
  }
  return { bytes: Buffer.concat(views), err: undefined }
}

/** What `promise` rejects with (undefined when it resolves): ava's throwsAsync takes no DOMException. */
async function rejection (promise: Promise<unknown>): Promise<{ name?: unknown, code?: unknown } | undefined> {
  return await promise.then(() => undefined, (err: { name?: unknown, code?: unknown }) => err)
}

/** How long a test waits for the client to close a connection before it fails instead of hanging (no measure of speed). */
const closeWithin = 60_000

const codeOf = (err: unknown): unknown => (err as { code?: unknown } | undefined)?.code

/** A server that sends `wire` whole and then holds the connection open (silent). */
const sends = (...wire: Array<Uint8Array | string>): Script => socket => { for (const part of wire) socket.write(part) }

// --- bodies -----------------------------------------------------------------------------

/** Bytes a server sends after a delimited body: they belong to no body. */
const pastTheEnd = 'HTTP/1.1 200 OK\r\n'

const framings: Record<string, { frame: (body: Buffer) => Array<Uint8Array | string>, closes: boolean }> = {
  // the server keeps the connection open after a delimited body: the client must end on the framing, not the close
  'Content-Length': { frame: body => [head('200 OK', `Content-Length: ${body.length}`), body, pastTheEnd], closes: false },
  chunked: { frame: body => [head('200 OK', 'Transfer-Encoding: chunked'), chunked(body, [1, 65 * KiB + 3, 3 * MiB + 5, 4 * MiB, 17]), pastTheEnd], closes: false },
  'close-delimited': { frame: body => [head('200 OK', 'Content-Type: application/octet-stream'), body], closes: true }
}

for (const [name, { frame, closes }] of Object.entries(framings)) {
  test(`a ${name} body comes out byte for byte, a few bytes and ~10 MiB across many slabs`, async t => {
    for (const size of [5, 10 * MiB + 7]) {
      // the default 4 MiB; 64 KiB, MIN_READ itself, a fresh slab for every read; 100 KiB, sealed part-full
      for (const slabSize of [undefined, 64 * KiB, 100 * KiB]) {
        const sent = randomBytes(size)
        await withServer(socket => { for (const part of frame(sent)) socket.write(part); if (closes) socket.end() }, async ({ url }) => {
          const res = await slabGet(url, { slabSize })
          t.is(res.statusCode, 200)
          const { bytes, views } = await readAll(t, res.body)
          t.true(bytes.equals(sent), `${size} bytes in slabs of ${slabSize ?? 'default'} bytes`)
          if (size > 4 * MiB) t.true(new Set(views.map(view => view.buffer)).size >= 3, 'the body crossed slabs')
        })
      }
    }
  })
}

test('a body of no bytes (204, Content-Length: 0) ends at once, without waiting for the close', async t => {
  for (const wire of [head('204 No Content'), head('200 OK', 'Content-Length: 0')]) {
    await withServer(sends(wire, pastTheEnd), async ({ url }) => {
      const { body } = await slabGet(url)
      t.is((await readAll(t, body)).bytes.length, 0)
    })
  }
})

test('chunked coding sent a byte at a time: extensions, upper-case hex, CRLFs and trailers split anywhere', async t => {
  const wire = '5;foo=bar\r\nhello\r\n' +
    '00A; name="quoted;value"\r\n0123456789\r\n' +
    '1a\r\nabcdefghijklmnopqrstuvwxyz\r\n' +
    '1F\r\nABCDEFGHIJKLMNOPQRSTUVWXYZ-+=!.\r\n' +
    '0;last\r\nX-Checksum: 1\r\nx-other: 2\r\n\r\n'
  const expected = 'hello0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-+=!.'
  await withServer(async socket => {
    socket.write(head('200 OK', 'Transfer-Encoding: chunked'))
    await dribble(socket, [...bytewise(wire), pastTheEnd])
  }, async ({ url }) => {
    const { body } = await slabGet(url)
    const { bytes, views } = await readAll(t, body)
    t.is(bytes.toString('latin1'), expected)
    t.true(views.length > 1, 'the data came in several reads')
  })
})

test('~10 MiB of chunked coding written in pieces cut across every part of the framing comes out whole, views end to end', async t => {
  const sent = randomBytes(10 * MiB + 3)
  const wire = chunked(sent, [1, 2, 300, 65 * KiB + 1, MiB - 1, 4 * MiB + 9, 13], 'Trailer-One: x\r\n')
  // lengths that keep moving the cuts relative to the chunk lines and CRLFs
  const pieces = cut(wire, [1, 2, 3, 5, 4093, 65537, 7, 300_001, 1, 1, 1])
  for (const slabSize of [undefined, 96 * KiB]) {
    await withServer(async socket => {
      socket.write(head('200 OK', 'Transfer-Encoding: chunked'))
      await dribble(socket, pieces, 0)
    }, async ({ url }) => {
      const { body } = await slabGet(url, { slabSize })
      t.true((await readAll(t, body)).bytes.equals(sent), `slabs of ${slabSize ?? 'default'} bytes`)
    })
  }
})

test('malformed chunked coding fails the body with the parser\'s code', async t => {
  for (const wire of ['zz\r\nhello\r\n0\r\n\r\n', '5\r\nhelloXX\r\n0\r\n\r\n', `${'1'.repeat(13)}\r\n`]) {
    await withServer(sends(head('200 OK', 'Transfer-Encoding: chunked'), wire), async ({ url }) => {
      const { body } = await slabGet(url)
      t.is(codeOf((await readUntilFailure(body)).err), 'HPE_INVALID_CHUNK_SIZE', JSON.stringify(wire))
    })
  }
})

// --- the head ---------------------------------------------------------------------------

test('status and headers: 1xx answers skipped, names lower-cased, repeats joined, the head split a byte at a time', async t => {
  const wire = head('100 Continue') +
    head('103 Early Hints', 'Link: </style.css>; rel=preload') +
    head('201 Created', 'Content-Type: application/json', 'X-Rep: a', 'x-rep:   b  ', 'Constructor: c', 'Content-Length: 2') + '{}'
  await withServer(async socket => { await dribble(socket, bytewise(wire)) }, async ({ url, request }) => {
    const res = await slabGet(`${url}/p/q?r=1`, { headers: { 'x-want': 'car' } })
    t.is(res.statusCode, 201)
    t.deepEqual({ ...res.headers }, { 'content-type': 'application/json', 'x-rep': 'a, b', constructor: 'c', 'content-length': '2' })
    t.is((await readAll(t, res.body)).bytes.toString(), '{}')
    const sent = await request
    t.regex(sent, /^GET \/p\/q\?r=1 HTTP\/1\.1\r\n/)
    t.regex(sent, /\r\nhost: 127\.0\.0\.1:\d+\r\n/)
    t.regex(sent, /\r\nx-want: car\r\n/)
    t.regex(sent, /\r\nconnection: close\r\n/)
  })
})

test('a 404 with a JSON body is an answer: its status and body are returned', async t => {
  const json = JSON.stringify({ error: { code: 'ERR_NOT_FOUND', message: 'x' } })
  await withServer(sends(head('404 Not Found', 'Content-Type: application/json', `Content-Length: ${json.length}`), json), async ({ url }) => {
    const res = await slabGet(url)
    t.is(res.statusCode, 404)
    t.deepEqual(JSON.parse((await readAll(t, res.body)).bytes.toString()), { error: { code: 'ERR_NOT_FOUND', message: 'x' } })
  })
})

test('headers over 64 KiB fail with UND_ERR_HEADERS_OVERFLOW, whole or without end, whatever the slab size', async t => {
  const pad = `X-Pad: ${'a'.repeat(64 * KiB)}`
  const heads: Array<[string, Script]> = [
    ['a whole head', sends(head('200 OK', pad))],
    ['header lines without end', async socket => { await dribble(socket, Array.from({ length: 40 }, () => `${pad.slice(0, 4 * KiB)}\r\n`)) }]
  ]
  for (const [what, script] of heads) {
    for (const slabSize of [undefined, 64 * KiB, 100 * KiB]) {
      await withServer(script, async ({ url }) => {
        await rejectsCode(t, slabGet(url, { slabSize }), 'UND_ERR_HEADERS_OVERFLOW', `${what} in slabs of ${slabSize ?? 'default'} bytes`)
      })
    }
  }
})

test('a head that is not HTTP fails with the parser\'s code', async t => {
  const cases: Array<[string, string]> = [
    ['SSH-2.0-OpenSSH_9.2\r\n\r\n', 'HPE_INVALID_CONSTANT'],
    ['HTTP/2 200\r\n\r\n', 'HPE_INVALID_CONSTANT'],
    [head('200 OK', 'no colon here'), 'HPE_INVALID_HEADER_TOKEN'],
    [head('200 OK', 'Content-Length: 12x'), 'HPE_INVALID_CONTENT_LENGTH']
  ]
  for (const [wire, code] of cases) {
    await withServer(sends(wire), async ({ url }) => { await rejectsCode(t, slabGet(url), code, JSON.stringify(wire)) })
  }
})

// --- failures ---------------------------------------------------------------------------

test('a server that closes before its head is whole: UND_ERR_SOCKET', async t => {
  for (const sent of ['', 'HTTP/1.1 200 OK\r\nContent-Le']) {
    await withServer(socket => { socket.end(sent) }, async ({ url }) => {
      await rejectsCode(t, slabGet(url), 'UND_ERR_SOCKET', JSON.stringify(sent))
    })
  }
})

test('a server that closes mid-body of a delimited body: the bytes that came, then UND_ERR_SOCKET', async t => {
  const sent = randomBytes(3 * MiB)
  const wires = [
    [head('200 OK', `Content-Length: ${sent.length + 1}`), sent],
    // cut inside the data of a chunk after others
    [head('200 OK', 'Transfer-Encoding: chunked'), chunked(sent, [MiB, 2 * MiB + 1]).subarray(0, -20)]
  ]
  for (const wire of wires) {
    await withServer(socket => { for (const part of wire) socket.write(part); socket.end() }, async ({ url }) => {
      const { body } = await slabGet(url)
      const { bytes, err } = await readUntilFailure(body)
      t.is(codeOf(err), 'UND_ERR_SOCKET')
      t.true(bytes.length > 0 && bytes.equals(sent.subarray(0, bytes.length)), 'what came is the body\'s beginning')
    })
  }
})

test.serial('a head that never comes: UND_ERR_HEADERS_TIMEOUT', async t => {
  for (const sent of ['', 'HTTP/1.1 200 OK\r\n']) {
    await withServer(sends(sent), async ({ url }) => {
      await rejectsCode(t, slabGet(url, { headersTimeoutMs: 200 }), 'UND_ERR_HEADERS_TIMEOUT', JSON.stringify(sent))
    })
  }
})

test.serial('a body that goes silent: the bytes that came, then UND_ERR_BODY_TIMEOUT', async t => {
  await withServer(sends(head('200 OK', 'Content-Length: 100'), 'ten bytes.'), async ({ url }) => {
    const { body } = await slabGet(url, { bodyTimeoutMs: 200 })
    const { bytes, err } = await readUntilFailure(body)
    t.is(codeOf(err), 'UND_ERR_BODY_TIMEOUT')
    t.is(bytes.toString(), 'ten bytes.')
  })
})

test.serial('a consumer that holds the body past the high-water mark for longer than bodyTimeoutMs is not timed out', async t => {
  // 20 MiB is well over the 8 MiB read ahead: the socket is paused while the consumer holds
  const sent = randomBytes(20 * MiB)
  await withServer(sends(head('200 OK', `Content-Length: ${sent.length}`), sent), async ({ url }) => {
    const bodyTimeoutMs = 200
    const { body } = await slabGet(url, { bodyTimeoutMs })
    const views: Uint8Array[] = []
    for await (const view of body) {
      if (views.length === 0) await sleep(3 * bodyTimeoutMs)
      views.push(view)
    }
    t.true(Buffer.concat(views).equals(sent))
  })
})

test('an AbortSignal aborted before or mid-body ends the transfer with its reason', async t => {
  t.timeout(closeWithin)
  await withServer(sends(head('200 OK', `Content-Length: ${MiB}`), 'a first part'), async ({ url, closed }) => {
    const controller = new AbortController()
    const { body } = await slabGet(url, { signal: controller.signal })
    const reason = new Error('stop')
    const failure = readUntilFailure((async function * () {
      for await (const view of body) { controller.abort(reason); yield view }
    })())
    t.is((await failure).err, reason)
    await closed
  })
  await withServer(sends(''), async ({ url }) => {
    const controller = new AbortController()
    const pending = slabGet(url, { signal: controller.signal })
    controller.abort()
    // the default reason is a DOMException named AbortError, as undici rejects with
    t.is((await rejection(pending))?.name, 'AbortError')
    t.is((await rejection(slabGet(url, { signal: AbortSignal.abort() })))?.name, 'AbortError', 'aborted before it started')
  })
})

test('a refused connection rejects with ECONNREFUSED', async t => {
  const server = createServer()
  const port = await listening(server)
  await closing(server)
  await rejectsCode(t, slabGet(`http://127.0.0.1:${port}/`), 'ECONNREFUSED')
})

test('body.destroy(err) mid-body makes the iterator throw err and closes the connection', async t => {
  t.timeout(closeWithin)
  await withServer(sends(head('200 OK', `Content-Length: ${MiB}`), 'a first part'), async ({ url, closed }) => {
    const { body } = await slabGet(url)
    const err = new Error('the consumer gave up')
    let first = true
    const failure = await readUntilFailure((async function * () {
      for await (const view of body) {
        if (first) body.destroy(err)
        first = false
        yield view
      }
    })())
    t.is(failure.err, err)
    t.true(body.destroyed)
    await closed
  })
})

test('breaking out of the for-await loop early closes the connection', async t => {
  t.timeout(closeWithin)
  const sent = randomBytes(10 * MiB)
  await withServer(sends(head('200 OK', `Content-Length: ${sent.length}`), sent), async ({ url, closed }) => {
    const { body } = await slabGet(url)
    for await (const view of body) {
      t.true(Buffer.from(view).equals(sent.subarray(0, view.byteLength)))
      break
    }
    t.true(body.destroyed)
    await closed
  })
})

// --- slabs ------------------------------------------------------------------------------

/** Each view with the body offset it starts at. */
interface Placed { view: Uint8Array, at: number }

/** The body offset after the last byte of each slab (by its buffer) among `placed`. */
function slabEnds (placed: Placed[]): Map<ArrayBufferLike, number> {
  const ends = new Map<ArrayBufferLike, number>()
  for (const { view, at } of placed) ends.set(view.buffer, at + view.byteLength)
  return ends
}

async function take (it: AsyncIterator<Uint8Array>, placed: Placed[], upTo: number): Promise<number> {
  let at = placed.length === 0 ? 0 : placed[placed.length - 1].at + placed[placed.length - 1].view.byteLength
  while (at < upTo) {
    const next = await it.next()
    if (next.done === true) break
    placed.push({ view: next.value, at })
    at += next.value.byteLength
  }
  return at
}

test('release gives back sealed slabs wholly before the offset; the slab being filled stays held', async t => {
  const sent = randomBytes(12 * MiB)
  const first = 10 * MiB
  let goOn!: () => void
  const more = new Promise<void>(resolve => { goOn = resolve })
  await withServer(async socket => {
    socket.write(head('200 OK', `Content-Length: ${sent.length}`))
    socket.write(sent.subarray(0, first))
    await more
    socket.write(sent.subarray(first))
  }, async ({ url }) => {
    const { body } = await slabGet(url, { slabSize: 4 * MiB })
    const it = body[Symbol.asyncIterator]()
    const placed: Placed[] = []
    t.is(await take(it, placed, first), first)
    const last = placed[placed.length - 1].view.buffer
    t.true(slabEnds(placed).size >= 3, 'the first 10 MiB fill several slabs')
    // a copy: the released slabs go back to the pool, and the body's next slabs may be them
    const before = Buffer.concat(placed.map(({ view }) => view))
    body.release(first)
    t.deepEqual(placed.map(({ view }) => body.holds(view)), placed.map(({ view }) => view.buffer === last), 'only the unsealed slab is still held')
    goOn()
    t.is(await take(it, placed, Infinity), sent.length)
    t.true(Buffer.concat([before, ...placed.filter(({ at }) => at >= first).map(({ view }) => view)]).equals(sent))
    body.release(sent.length)
    t.false(placed.some(({ view }) => body.holds(view)), 'after the whole body, nothing is held')
  })
})

test('releasing an offset keeps the slabs that reach past it', async t => {
  const sent = randomBytes(12 * MiB)
  await withServer(sends(head('200 OK', `Content-Length: ${sent.length}`), sent), async ({ url }) => {
    const { body } = await slabGet(url, { slabSize: 4 * MiB })
    const placed: Placed[] = []
    t.is(await take(body[Symbol.asyncIterator](), placed, Infinity), sent.length)
    const ends = slabEnds(placed)
    const [firstEnd, secondEnd] = [...ends.values()]
    t.true(ends.size >= 3 && firstEnd < secondEnd)
    // one byte into the second slab, then exactly its end
    for (const offset of [firstEnd + 1, secondEnd]) {
      body.release(offset)
      t.deepEqual(placed.map(({ view }) => body.holds(view)), placed.map(({ view }) => (ends.get(view.buffer) as number) > offset), `released up to ${offset}`)
    }
  })
})

// --- through the provider client --------------------------------------------------------

test('ProviderClient.carResponse: through undici (slabs: false) and through slab-get, the same bytes, order and coded errors', async t => {
  const sent = randomBytes(5 * MiB + 11)
  const root = CID.createV1(0x55, await sha256.digest(sent))
  const server = createHttpServer((req, res) => {
    if (req.url === `/ipfs/${root.toString()}?dag-scope=all`) {
      res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1; order=dfs; dups=n' })
      // two writes: node:http sends them in chunked coding
      res.write(sent.subarray(0, MiB))
      res.end(sent.subarray(MiB))
      return
    }
    res.writeHead(404, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: { code: 'ERR_NOT_FOUND', message: 'x' } }))
  })
  const port = await listening(server)
  const url = `http://127.0.0.1:${port}`
  const absent = CID.createV1(0x55, await sha256.digest(new TextEncoder().encode('absent')))
  try {
    const answers = []
    for (const slabs of [false, undefined]) {
      const client = new ProviderClient(url, { slabs })
      const car = await client.carResponse(root)
      const chunks: Uint8Array[] = []
      for await (const chunk of car.body) chunks.push(chunk)
      t.true(Buffer.concat(chunks).equals(sent), `slabs: ${String(slabs)}`)
      t.is(car.slabs === undefined, slabs === false, 'slab-get is used unless slabs is false')
      if (car.slabs !== undefined) t.true(chunks.every(chunk => car.slabs?.holds(chunk)))
      const err = await rejectsCode(t, client.carResponse(absent), 'ERR_NOT_FOUND')
      answers.push({ order: car.order, dups: car.dups, message: err?.message })
    }
    t.deepEqual(answers, [{ order: 'dfs', dups: 'n', message: 'x' }, { order: 'dfs', dups: 'n', message: 'x' }])
  } finally {
    server.closeAllConnections()
    await closing(server)
  }
})
