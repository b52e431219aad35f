/**
 * What a client reads from a provider is bounded: a signed message (ask,
 * acceptance, status) is at most 64 KiB and must arrive whole in time, an
 * error body too, and a retrieval must keep moving (no byte for --timeout:
 * ERR_TIMEOUT; a trickle below the rate floor: ERR_TRANSFER_TOO_SLOW). A
 * provider streaming without end gets a coded error, not this process's memory.
 */
import test from 'ava'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { CID } from 'multiformats/cid'
import { ProviderClient } from '../../src/client/provider-client.js'
import { Agent } from 'undici'
import { createSigner } from '../../src/protocol/signing.js'
import { signProofRequest } from '../../src/protocol/proof-request.js'
import { cairn, tempDir } from '../helpers/cli.js'
import { rejectsCode } from '../helpers/errors.js'

/** A provider that answers every request with `answer`; stops with the test. */
async function misbehaving (t: import('ava').ExecutionContext, answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const sockets = new Set<import('node:net').Socket>()
  const server = createServer(answer)
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise(resolve => server.close(resolve))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** Writes `chunk` every `everyMs` until the client goes away. */
function endless (res: ServerResponse, chunk: string | Uint8Array, everyMs: number): void {
  const timer = setInterval(() => { if (res.destroyed) clearInterval(timer); else res.write(chunk) }, everyMs)
  res.on('close', () => clearInterval(timer))
}

test('an endless /v1/ask is cut off at 64 KiB: ERR_RESPONSE_TOO_LARGE, from the library and from `cairn ask` and `providers add`', async (t) => {
  const url = await misbehaving(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"payload": "')
    endless(res, 'a'.repeat(16 * 1024), 1)
  })
  const err = await t.throwsAsync(new ProviderClient(url).ask())
  t.is((err as { code?: string }).code, 'ERR_RESPONSE_TOO_LARGE')
  const ask = await cairn(['ask', url], { timeoutMs: 20_000 })
  t.is(ask.code, 5, ask.stderr)
  t.regex(ask.stderr, /^error ERR_RESPONSE_TOO_LARGE: provider \S+ answered GET \/v1\/ask with more than 65536 bytes/m)
})

test('a declared oversized message, an endless error body and a message that never ends in time are coded', async (t) => {
  const url = await misbehaving(t, (req, res) => {
    if (req.url === '/v1/ask') { res.writeHead(200, { 'content-length': String(10 << 20) }); endless(res, 'x', 5); return }
    if (req.url?.endsWith('/piece')) { res.writeHead(500); endless(res, 'x'.repeat(8192), 1); return }
    res.writeHead(200, { 'content-type': 'application/json' })
    endless(res, ' ', 50)
  })
  const client = new ProviderClient(url, { messageTimeoutMs: 500 })
  await rejectsCode(t, client.ask(), 'ERR_RESPONSE_TOO_LARGE')
  const id = CID.parse('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
  await rejectsCode(t, client.status(id, 'did:key:z6MkfakeProvider'), 'ERR_TIMEOUT')
  const upload = client.upload({ did: 'did:key:z6Mk', sign: () => new Uint8Array(64) }, id, 'did:key:z6Mk', (async function * () { yield new Uint8Array(10) })(), { length: 10 })
  await rejectsCode(t, upload, 'ERR_RESPONSE_TOO_LARGE')
})

test('a retrieval trickling below the rate floor is ERR_TRANSFER_TOO_SLOW; a silent one ERR_TIMEOUT (`cairn get --timeout`)', async (t) => {
  const root = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'
  const url = await misbehaving(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1; order=dfs; dups=n' })
    // a plausible CAR header length (60,000 bytes), then its bytes one at a time
    res.write(Uint8Array.of(0xe0, 0xd4, 0x03))
    endless(res, Uint8Array.of(0), 100)
  })
  // the silence limit is twenty gaps of the trickle, so a loaded machine's stalls stay trickling, not silence
  const client = new ProviderClient(url, { bodyTimeoutMs: 2000, minBytesPerSecond: 1000 })
  const err = await t.throwsAsync((async () => { for await (const _ of await client.car(CID.parse(root))) { /* read */ } })())
  t.is((err as { code?: string }).code, 'ERR_TRANSFER_TOO_SLOW')
  t.regex(err!.message, /sent \d+ bytes in \d+ ms \(\d+ bytes\/s\); at least 1000 bytes\/s are expected/)
  const dir = await tempDir()
  t.teardown(dir.cleanup)
  const got = await cairn(['get', root, '--provider', url, '--timeout', '2s', '-o', `${dir.path}/out`], { timeoutMs: 30_000 })
  t.is(got.code, 5, got.stderr)
  t.regex(got.stderr, /ERR_TRANSFER_TOO_SLOW/)
  const silent = await misbehaving(t, (_req, res) => { res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1' }); res.write(Uint8Array.of(0x3a)) })
  const quiet = await cairn(['get', root, '--provider', silent, '--timeout', '500ms', '-o', `${dir.path}/out`], { timeoutMs: 30_000 })
  t.is(quiet.code, 5, quiet.stderr)
  t.regex(quiet.stderr, /ERR_TIMEOUT/)
})

test('a silence noticed late (the event loop stalled past both deadlines) is still ERR_TIMEOUT, not ERR_TRANSFER_TOO_SLOW', async (t) => {
  const url = await misbehaving(t, (_req, res) => { res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1' }); res.write(Uint8Array.of(0x3a)) })
  const client = new ProviderClient(url, { bodyTimeoutMs: 200, minBytesPerSecond: 1000 })
  const body = (await client.car(CID.parse('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')))[Symbol.asyncIterator]()
  t.is((await body.next()).value?.length, 1)
  // as a loaded machine does: nothing runs until the silence and the rate deadlines have both passed
  const until = Date.now() + 700
  while (Date.now() < until) { /* stalled */ }
  const err = await t.throwsAsync(body.next())
  t.is((err as { code?: string }).code, 'ERR_TIMEOUT', err?.message)
})

test('a proof answer is bounded and must be DAG-JSON: ERR_PROOF_MALFORMED either way; an error answer keeps its code', async (t) => {
  const url = await misbehaving(t, (req, res) => {
    const seed = req.headers['x-case']
    if (seed === 'endless') { res.writeHead(200, { 'content-type': 'application/json' }); endless(res, 'x'.repeat(64 * 1024), 1); return }
    if (seed === 'garbage') { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{not json'); return }
    res.writeHead(404, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: { code: 'ERR_DEAL_NOT_FOUND', message: 'no such deal' } }))
  })
  const signer = createSigner(new Uint8Array(32).fill(9))
  const dealId = CID.parse('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
  const seed = new Uint8Array(32).fill(1)
  const request = signProofRequest(signer, { dealId, seed, count: 1, at: Math.floor(Date.now() / 1000), head: null })
  const expect = { dealId, pieceCid: dealId, provider: signer.did, seed, count: 1 }
  const asking = (which: string): ProviderClient => new ProviderClient(url, { dispatcher: new Agent().compose((dispatch) => (opts, handler) => dispatch({ ...opts, headers: { ...opts.headers as Record<string, string>, 'x-case': which } }, handler)) })
  await rejectsCode(t, asking('endless').prove(request, expect), 'ERR_PROOF_MALFORMED')
  await rejectsCode(t, asking('garbage').prove(request, expect), 'ERR_PROOF_MALFORMED')
  const refused = await rejectsCode(t, asking('refuse').prove(request, expect), 'ERR_DEAL_NOT_FOUND')
  t.is((refused as { details?: { status?: number } } | undefined)?.details?.status, 404)
})
