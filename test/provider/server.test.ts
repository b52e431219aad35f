/**
 * The provider's HTTP API (docs/protocol.md) over in-memory services: every route's
 * happy path, and hostile inputs — each answered with a 4xx and an ERR_ code
 * while the server keeps serving other clients.
 */
import test from 'ava'
import * as dagJSON from '@ipld/dag-json'
import { CID } from 'multiformats/cid'
import { httpStatusOf } from '../../src/http/server.js'
import { parsePieceCidParam, parseRange } from '../../src/provider/piece.js'
import { pieceCidV1, pieceCidV2 } from '../../proofs/index.js'
import { FakeDeals, rawRequest, startProvider, type Running } from './fixtures.js'

const PIECE_V2 = 'bafkzcibcaapao7vvnopbr3xbvhmrxr7anzwwbj6jglbhfs3lbnwhqnsl4c46dzq'
const DEAL = 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'

const limits = { idleTimeoutMs: 400, minUploadBytesPerSecond: 1024, uploadRateWindowMs: 600, maxHeaderSize: 4096, maxJSONBodyBytes: 1024, maxUploadBytes: 1 << 20, headersTimeoutMs: 1000, shutdownGraceMs: 500 }

let run: Running

test.before(async () => {
  run = await startProvider(limits)
  run.pieces.map.set(CID.parse(PIECE_V2).toString(), Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff))
})

test.after.always(async () => { await run?.service.close() })

async function errorCode (res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code
}

async function stillServing (t: { is: (a: unknown, b: unknown) => void }): Promise<void> {
  const res = await fetch(`${run.url}/healthz`)
  t.is(res.status, 200)
}

async function propose (body: unknown): Promise<Response> {
  return await fetch(`${run.url}/v1/deals`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: dagJSON.stringify(body) })
}

test.serial('GET /healthz and /metrics', async (t) => {
  const health = await fetch(`${run.url}/healthz`)
  t.deepEqual(await health.json(), { status: 'ok' })
  const metrics = await fetch(`${run.url}/metrics`)
  t.regex(metrics.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
  const text = await metrics.text()
  t.regex(text, /^# HELP cairn_deals /m)
  t.regex(text, /^cairn_bytes_stored 1234$/m)
  t.regex(text, /^# TYPE cairn_uploads_total counter$/m)
  const loop = /^cairn_event_loop_delay_max_seconds (\S+)$/m.exec(text)
  t.truthy(loop, 'the event-loop delay gauge is exported')
  t.true(Number(loop?.[1]) >= 0)
})

test.serial('GET /v1/ask returns the ask as DAG-JSON', async (t) => {
  const res = await fetch(`${run.url}/v1/ask`)
  t.is(res.status, 200)
  const ask = dagJSON.parse(await res.text()) as { provider: string }
  t.is(ask.provider, 'did:key:z6MkFake')
})

test.serial('POST /v1/deals → 201 acceptance; PUT piece → stored; GET status → active', async (t) => {
  const res = await propose({ pieceCid: PIECE_V2, payloadSize: 5000, price: 50 })
  t.is(res.status, 201)
  const acceptance = await res.json() as { dealId: string }
  t.is(acceptance.dealId, DEAL)
  const body = new Uint8Array(5000).fill(7)
  const put = await fetch(`${run.url}/v1/deals/${DEAL}/piece`, { method: 'PUT', body, headers: { authorization: 'Cairn test' } })
  t.is(put.status, 200)
  t.deepEqual(await put.json(), { dealId: DEAL, state: 'active', bytes: 5000 })
  t.is(run.deals.uploads.at(-1)?.authorization, 'Cairn test')
  const status = await fetch(`${run.url}/v1/deals/${DEAL}`)
  t.deepEqual(await status.json(), { dealId: DEAL, state: 'active' })
  const text = await (await fetch(`${run.url}/metrics`)).text()
  t.regex(text, /cairn_uploads_total\{result="stored"\} 1/)
  t.regex(text, /cairn_deals\{state="active"\} 1/)
})

test.serial('a rejected proposal is a 4xx naming the rule', async (t) => {
  const res = await propose({ pieceCid: PIECE_V2, payloadSize: 10, price: 10 })
  t.is(res.status, 403)
  const body = await res.json() as { error: { code: string, message: string } }
  t.is(body.error.code, 'ERR_PERMISSION_DENIED')
  t.regex(body.error.message, /offered 10 per GiB per day/)
})

test('POST /v1/deals/{id}/proofs is 501 until proofs are answered', async (t) => {
  const res = await fetch(`${run.url}/v1/deals/${DEAL}/proofs`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
  t.is(res.status, 501)
  t.is(await errorCode(res), 'ERR_NOT_IMPLEMENTED')
})

test('malformed JSON is 400 ERR_INVALID_JSON; an empty body too', async (t) => {
  for (const body of ['{"pieceCid": ', '', 'nope', '{"a":1}}']) {
    const res = await fetch(`${run.url}/v1/deals`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
    t.is(res.status, 400, body)
    t.is(await errorCode(res), 'ERR_INVALID_JSON', body)
  }
  await stillServing(t)
})

test('unknown fields are 400 ERR_UNKNOWN_FIELD', async (t) => {
  const res = await propose({ pieceCid: PIECE_V2, payloadSize: 1, price: 50, extra: true })
  t.is(res.status, 400)
  t.is(await errorCode(res), 'ERR_UNKNOWN_FIELD')
})

test('a JSON body over the limit is 413, declared or streamed', async (t) => {
  const big = JSON.stringify({ pieceCid: 'x'.repeat(2000) })
  const declared = await fetch(`${run.url}/v1/deals`, { method: 'POST', body: big, headers: { 'content-type': 'application/json' } })
  t.is(declared.status, 413)
  t.is(await errorCode(declared), 'ERR_PAYLOAD_TOO_LARGE')
  const streamed = await rawRequest(run.url, [
    'POST /v1/deals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
    `${(1500).toString(16)}\r\n${'a'.repeat(1500)}\r\n0\r\n\r\n`
  ])
  t.is(streamed.status, 413)
  t.regex(streamed.body, /ERR_PAYLOAD_TOO_LARGE/)
  await stillServing(t)
})

test('a wrong Content-Type for JSON is 400', async (t) => {
  const res = await fetch(`${run.url}/v1/deals`, { method: 'POST', body: '{}', headers: { 'content-type': 'text/plain' } })
  t.is(res.status, 400)
  t.is(await errorCode(res), 'ERR_BAD_REQUEST')
})

test('oversized headers are 431 ERR_HEADERS_TOO_LARGE', async (t) => {
  const res = await rawRequest(run.url, [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`])
  t.is(res.status, 431)
  t.regex(res.body, /ERR_HEADERS_TOO_LARGE/)
  await stillServing(t)
})

test('garbage instead of HTTP is 400 ERR_BAD_REQUEST', async (t) => {
  const res = await rawRequest(run.url, ['\x16\x03\x01 hello\r\n\r\n'])
  t.is(res.status, 400)
  t.regex(res.body, /ERR_BAD_REQUEST/)
})

test('unknown route 404, wrong method 405, both coded', async (t) => {
  const missing = await fetch(`${run.url}/v2/nothing`)
  t.is(missing.status, 404)
  t.is(await errorCode(missing), 'ERR_NOT_FOUND')
  const method = await fetch(`${run.url}/v1/ask`, { method: 'DELETE' })
  t.is(method.status, 405)
  t.is(await errorCode(method), 'ERR_METHOD_NOT_ALLOWED')
})

test('an unknown deal id is 404 ERR_DEAL_NOT_FOUND; a bad one is 400 ERR_INVALID_CID', async (t) => {
  const unknown = await fetch(`${run.url}/v1/deals/bafyreidykglsfhoixmivffc5uwhcgshx4j465xwqntbmu43nb2dzqwfvae`)
  t.is(unknown.status, 404)
  t.is(await errorCode(unknown), 'ERR_DEAL_NOT_FOUND')
  const bad = await fetch(`${run.url}/v1/deals/not-a-cid`)
  t.is(bad.status, 400)
  t.is(await errorCode(bad), 'ERR_INVALID_CID')
  const badPut = await fetch(`${run.url}/v1/deals/%00zz/piece`, { method: 'PUT', body: 'x' })
  t.is(badPut.status, 400)
})

test('upload without Content-Length is 411; over the limit 413; not the deal size 400', async (t) => {
  const chunked = await rawRequest(run.url, [
    `PUT /v1/deals/${DEAL}/piece HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`,
    '5\r\nhello\r\n0\r\n\r\n'
  ])
  t.is(chunked.status, 411)
  t.regex(chunked.body, /ERR_LENGTH_REQUIRED/)
  const huge = await rawRequest(run.url, [`PUT /v1/deals/${DEAL}/piece HTTP/1.1\r\nHost: x\r\nContent-Length: ${(1 << 20) + 1}\r\n\r\n`])
  t.is(huge.status, 413)
  t.regex(huge.body, /ERR_PAYLOAD_TOO_LARGE/)
  const deals = new FakeDeals()
  const other = await startProvider(limits, { deals })
  try {
    await fetch(`${other.url}/v1/deals`, { method: 'POST', body: JSON.stringify({ payloadSize: 100 }), headers: { 'content-type': 'application/json' } })
    const wrong = await fetch(`${other.url}/v1/deals/${DEAL}/piece`, { method: 'PUT', body: new Uint8Array(99) })
    t.is(wrong.status, 400)
    t.is(await errorCode(wrong), 'ERR_CONTENT_LENGTH')
  } finally {
    await other.service.close()
  }
})

test('a body shorter than its Content-Length (client hangs up) fails the upload with ERR_CONTENT_LENGTH, logged once as an aborted request', async (t) => {
  const deals = new FakeDeals()
  const other = await startProvider(limits, { deals })
  try {
    await fetch(`${other.url}/v1/deals`, { method: 'POST', body: JSON.stringify({ payloadSize: 4000 }), headers: { 'content-type': 'application/json' } })
    await rawRequest(other.url, [`PUT /v1/deals/${DEAL}/piece HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n`, 'x'.repeat(100)], 200)
    for (let i = 0; i < 100 && !other.logs.some(l => l.event === 'request-aborted'); i++) await new Promise((resolve) => setTimeout(resolve, 20))
    await new Promise((resolve) => setTimeout(resolve, 100))
    const failed = other.logs.filter((l) => ['upload-failed', 'request-aborted', 'request-rejected', 'error'].includes(l.event))
    t.deepEqual(failed.map(l => l.event), ['request-aborted'], JSON.stringify(failed))
    t.like(failed[0]?.fields, { reason: 'ERR_CONTENT_LENGTH', received: 100 })
    t.false((await (await fetch(`${other.url}/metrics`)).text()).includes('ERR_INTERNAL'))
    t.is(deals.deals.get(DEAL)?.state, 'accepted')
  } finally {
    await other.service.close()
  }
})

test('a client stalling mid-upload is cut off by the idle timeout with 408 ERR_TIMEOUT, and others are served meanwhile', async (t) => {
  const deals = new FakeDeals()
  const other = await startProvider({ ...limits, uploadRateWindowMs: 60_000 }, { deals })
  try {
    await fetch(`${other.url}/v1/deals`, { method: 'POST', body: JSON.stringify({ payloadSize: 4000 }), headers: { 'content-type': 'application/json' } })
    const stalled = rawRequest(other.url, [`PUT /v1/deals/${DEAL}/piece HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n`, 'x'.repeat(1000), { pauseMs: 3000 }], 3000)
    const health = await fetch(`${other.url}/healthz`)
    t.is(health.status, 200)
    const res = await stalled
    t.is(res.status, 408)
    t.regex(res.body, /ERR_TIMEOUT/)
    t.is(deals.deals.get(DEAL)?.state, 'accepted')
  } finally {
    await other.service.close()
  }
})

test('an upload below the minimum rate is cut off with 408 ERR_UPLOAD_TOO_SLOW', async (t) => {
  const deals = new FakeDeals()
  const other = await startProvider({ ...limits, idleTimeoutMs: 2000 }, { deals })
  try {
    await fetch(`${other.url}/v1/deals`, { method: 'POST', body: JSON.stringify({ payloadSize: 4000 }), headers: { 'content-type': 'application/json' } })
    const trickle: Array<string | { pauseMs: number }> = [`PUT /v1/deals/${DEAL}/piece HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n`]
    for (let i = 0; i < 20; i++) trickle.push('x'.repeat(20), { pauseMs: 100 })
    const res = await rawRequest(other.url, trickle, 4000)
    t.is(res.status, 408)
    t.regex(res.body, /ERR_UPLOAD_TOO_SLOW/)
  } finally {
    await other.service.close()
  }
})

test('GET /piece/{pieceCid}: whole, ranges (206), suffix, open-ended, unsatisfiable (416), HEAD', async (t) => {
  const url = `${run.url}/piece/${PIECE_V2}`
  const whole = await fetch(url)
  t.is(whole.status, 200)
  t.is(whole.headers.get('accept-ranges'), 'bytes')
  t.is((await whole.arrayBuffer()).byteLength, 1000)
  const part = await fetch(url, { headers: { range: 'bytes=10-19' } })
  t.is(part.status, 206)
  t.is(part.headers.get('content-range'), 'bytes 10-19/1000')
  t.deepEqual([...new Uint8Array(await part.arrayBuffer())], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
  const suffix = await fetch(url, { headers: { range: 'bytes=-5' } })
  t.is(suffix.headers.get('content-range'), 'bytes 995-999/1000')
  t.is((await suffix.arrayBuffer()).byteLength, 5)
  const open = await fetch(url, { headers: { range: 'bytes=990-' } })
  t.is((await open.arrayBuffer()).byteLength, 10)
  const past = await fetch(url, { headers: { range: 'bytes=1000-' } })
  t.is(past.status, 416)
  t.is(past.headers.get('content-range'), 'bytes */1000')
  t.is(await errorCode(past), 'ERR_RANGE_NOT_SATISFIABLE')
  const head = await fetch(url, { method: 'HEAD' })
  t.is(head.headers.get('content-length'), '1000')
  const missing = await fetch(`${run.url}/piece/bafkzcibcaapao7vvnopbr3xbvhmrxr7anzwwbj6jglbhfs3lbnwhqnsl4c46dza`)
  t.true(missing.status === 404 || missing.status === 400)
  const notPiece = await fetch(`${run.url}/piece/${DEAL}`)
  t.is(notPiece.status, 400)
  t.is(await errorCode(notPiece), 'ERR_INVALID_CID')
})

test('the piece route names a piece by a CID proofs/ accepts, v2 or v1; anything else is ERR_INVALID_CID', (t) => {
  const root = Uint8Array.from({ length: 32 }, (_, i) => i)
  for (const good of [pieceCidV2(root, 10, 0n), pieceCidV1(root)]) t.true(parsePieceCidParam(good.toString()).equals(good))
  const refused = [
    // FRC-0069: 1000 bytes of data in a 32 KiB tree; a lower tree holds them
    pieceCidV2(root, 10, 31512n),
    // the v1 codec over a plain sha2-256 digest
    CID.createV1(0xf101, CID.parse(DEAL).multihash)
  ]
  for (const cid of refused) {
    const err = t.throws(() => parsePieceCidParam(cid.toString()))
    t.is((err as { code?: string }).code, 'ERR_INVALID_CID', cid.toString())
  }
})

test('parseRange follows RFC 9110 for one range', (t) => {
  t.deepEqual(parseRange('bytes=0-0', 10), { start: 0, end: 0 })
  t.deepEqual(parseRange('bytes=5-100', 10), { start: 5, end: 9 })
  t.deepEqual(parseRange('bytes=-100', 10), { start: 0, end: 9 })
  t.is(parseRange('bytes=10-', 10), 'unsatisfiable')
  t.is(parseRange('bytes=0-1,3-4', 10), undefined)
  t.is(parseRange('items=0-1', 10), undefined)
  t.is(parseRange('bytes=5-2', 10), undefined)
})

test('HTTP statuses follow the code table', (t) => {
  t.is(httpStatusOf('ERR_INVALID_CID'), 400)
  t.is(httpStatusOf('ERR_DEAL_NOT_FOUND'), 404)
  t.is(httpStatusOf('ERR_UNAUTHORIZED'), 401)
  t.is(httpStatusOf('ERR_PRICE_TOO_LOW'), 403)
  t.is(httpStatusOf('ERR_PIECE_MISMATCH'), 422)
  t.is(httpStatusOf('ERR_HEADERS_TOO_LARGE'), 431)
  t.is(httpStatusOf('ERR_WHATEVER'), 500)
})

test('a handler that throws something uncoded is a logged 500 ERR_INTERNAL, and the server lives on', async (t) => {
  const deals = new FakeDeals()
  deals.ask = async () => { throw new Error('boom') }
  const other = await startProvider(limits, { deals })
  try {
    const res = await fetch(`${other.url}/v1/ask`)
    t.is(res.status, 500)
    const body = await res.json() as { error: { code: string, message: string } }
    t.is(body.error.code, 'ERR_INTERNAL')
    t.notRegex(body.error.message, /boom/)
    t.true(other.logs.some((l) => l.event === 'error' && l.fields?.message === 'boom'))
    t.is((await fetch(`${other.url}/healthz`)).status, 200)
  } finally {
    await other.service.close()
  }
})

test('stop aborts an upload in flight and refuses new requests', async (t) => {
  const deals = new FakeDeals()
  let release: () => void = () => {}
  deals.hold = new Promise((resolve) => { release = resolve })
  const other = await startProvider(limits, { deals })
  await fetch(`${other.url}/v1/deals`, { method: 'POST', body: JSON.stringify({ payloadSize: 10 }), headers: { 'content-type': 'application/json' } })
  const upload = fetch(`${other.url}/v1/deals/${DEAL}/piece`, { method: 'PUT', body: new Uint8Array(10) }).then(async (r) => ({ status: r.status, body: await r.text() })).catch(() => ({ status: 0, body: '' }))
  while (deals.uploads.length === 0) await new Promise((resolve) => setTimeout(resolve, 10))
  const closing = other.service.close()
  release()
  await closing
  const res = await upload
  t.true(res.status === 503 || res.status === 0)
  t.not(deals.deals.get(DEAL)?.state, 'active')
  await t.throwsAsync(fetch(`${other.url}/healthz`))
})
