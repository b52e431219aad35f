/**
 * The provider client against stand-in servers on 127.0.0.1:0: coded error
 * bodies keep the provider's code, unreachable and silent providers become
 * ERR_UNREACHABLE and ERR_TIMEOUT, and signed answers are verified.
 */
import test from 'ava'
import { createServer, type RequestListener } from 'node:http'
import type { AddressInfo } from 'node:net'
import * as dagJson from '@ipld/dag-json'
import { signAsk } from '../../src/protocol/ask.js'
import { createSigner } from '../../src/protocol/signing.js'
import { exitStatusOf } from '../../src/errors.js'
import { normaliseUrl, providerError, ProviderClient } from '../../src/client/provider-client.js'
import { providerTerms } from '../../src/provider/terms.js'

async function serve (handler: RequestListener): Promise<{ url: string, close: () => Promise<void> }> {
  const server = createServer(handler)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => { server.closeAllConnections(); await new Promise<void>(resolve => server.close(() => resolve())) }
  }
}

const signer = createSigner(new Uint8Array(32).fill(7))
const other = createSigner(new Uint8Array(32).fill(9))
// the ask a provider with these terms signs (capacity and ask lifetime are the provider's own)
const { capacity: _capacity, askTtl: _askTtl, ...offered } = providerTerms({ endpoint: 'http://127.0.0.1:1', maxPieceSize: 1n << 30n, maxDuration: 86400 * 10, provingPeriod: 3600 })
const ask = { provider: signer.did, ...offered, freeCapacity: 1n << 30n, seq: 1, expiry: Math.floor(Date.now() / 1000) + 3600 }

test('a provider error body becomes a CairnError with the provider code and its exit status', async (t) => {
  const s = await serve((_req, res) => {
    res.writeHead(403, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: { code: 'ERR_PRICE_TOO_LOW', message: 'offered 10 per GiB per day, provider asks at least 40', details: { offered: '10', min: '40' } } }))
  })
  try {
    const err = await t.throwsAsync(new ProviderClient(s.url).ask())
    t.is((err as { code?: string }).code, 'ERR_PRICE_TOO_LOW')
    t.regex(err?.message ?? '', /provider asks at least 40/)
    t.is(exitStatusOf('ERR_PRICE_TOO_LOW'), 5)
  } finally {
    await s.close()
  }
})

test('unknown codes and bodies without one are coded from the HTTP status', (t) => {
  t.is(providerError('http://x', 404, 'nope').code, 'ERR_NOT_FOUND')
  t.is(providerError('http://x', 500, '{"error":{"code":"ERR_MADE_UP","message":"m"}}').code, 'ERR_UNREACHABLE')
  t.is(providerError('http://x', 400, '<html>').code, 'ERR_BAD_REQUEST')
  t.is(providerError('http://x', 504, '').code, 'ERR_TIMEOUT')
})

test('a refused connection is ERR_UNREACHABLE', async (t) => {
  const s = await serve(() => {})
  const url = s.url
  await s.close()
  const err = await t.throwsAsync(new ProviderClient(url).ask())
  t.is((err as { code?: string }).code, 'ERR_UNREACHABLE')
})

test('a provider that never answers is ERR_TIMEOUT', async (t) => {
  const s = await serve(() => { /* never answers */ })
  try {
    const err = await t.throwsAsync(new ProviderClient(s.url, { headersTimeoutMs: 200 }).ask())
    t.is((err as { code?: string }).code, 'ERR_TIMEOUT')
  } finally {
    await s.close()
  }
})

test('the ask is verified: a good one passes, a forged signer or tampered field is refused', async (t) => {
  const good = signAsk(signer, ask)
  const forged = { ...signAsk(other, { ...ask, provider: other.did }), payload: { ...ask } }
  const tampered = { ...good, payload: { ...good.payload, pricePerGiBDay: 1n } }
  let answer: unknown = good
  const s = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(Buffer.from(dagJson.encode(answer)))
  })
  try {
    const client = new ProviderClient(s.url + '/')
    t.is(client.url, s.url)
    const verified = await client.ask()
    t.is(verified.payload.provider, signer.did)
    t.is(verified.payload.pricePerGiBDay, 40n)
    answer = forged
    t.is(((await t.throwsAsync(client.ask())) as { code?: string }).code, 'ERR_WRONG_SIGNER')
    answer = tampered
    t.is(((await t.throwsAsync(client.ask())) as { code?: string }).code, 'ERR_BAD_SIGNATURE')
    answer = { hello: 'world' }
    t.is(((await t.throwsAsync(client.ask())) as { code?: string }).code, 'ERR_INVALID_MESSAGE')
  } finally {
    await s.close()
  }
})

test('provider URLs are checked', (t) => {
  t.is(normaliseUrl('http://127.0.0.1:7470/'), 'http://127.0.0.1:7470')
  t.is(t.throws(() => normaliseUrl('ftp://x'))?.['code' as 'message'], 'ERR_INVALID_ARGUMENT')
  t.is(t.throws(() => normaliseUrl('not a url'))?.['code' as 'message'], 'ERR_INVALID_ARGUMENT')
})

test('an upload longer than the headers timeout completes; a provider that stops reading is ERR_TIMEOUT', async (t) => {
  const { signDealStatus } = await import('../../src/protocol/acceptance.js')
  const { CID } = await import('multiformats/cid')
  const dealId = CID.parse('bafyreihqobxes6w2ggxdzggete55febpztyfkmvqyw65htksuqzq7b4zc4')
  let stall = false
  const s = await serve((req, res) => {
    void (async () => {
      for await (const _ of req) {
        if (stall) await new Promise(() => {}) // stop reading: the client must notice
        await new Promise(resolve => setTimeout(resolve, 40))
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(Buffer.from(dagJson.encode(signDealStatus(signer, { dealId, provider: signer.did, state: 'active', at: 1 }))))
    })()
  })
  async function * body (): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < 16; i++) yield new Uint8Array(64 * 1024)
  }
  try {
    const client = new ProviderClient(s.url, { headersTimeoutMs: 200, bodyTimeoutMs: 2000 })
    const status = await client.upload(other, dealId, signer.did, body(), { length: 16 * 64 * 1024 })
    t.is(status.payload.state, 'active')
    stall = true
    const slow = new ProviderClient(s.url, { headersTimeoutMs: 200, bodyTimeoutMs: 300 })
    async function * big (): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 256; i++) yield new Uint8Array(1024 * 1024)
    }
    const err = await t.throwsAsync(slow.upload(other, dealId, signer.did, big(), { length: 256 * 1024 * 1024 }))
    t.is((err as { code?: string }).code, 'ERR_TIMEOUT')
  } finally {
    await s.close()
  }
})
