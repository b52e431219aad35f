/** The one network-error mapper and error-body parser (src/http/errors.ts). */
import test from 'ava'
import { CairnError } from '../../src/errors.js'
import { isNetworkFailure, networkError, providerError } from '../../src/http/errors.js'

const coded = (code: string, name = 'Error'): Error => Object.assign(new Error(`socket said ${code}`), { code, name })

test('network failures become ERR_TIMEOUT or ERR_UNREACHABLE, naming the peer; coded errors pass through', t => {
  const timeout = networkError(coded('UND_ERR_HEADERS_TIMEOUT'), 'provider http://p')
  t.is(timeout.code, 'ERR_TIMEOUT')
  t.regex(timeout.message, /provider http:\/\/p did not answer in time \(UND_ERR_HEADERS_TIMEOUT\)/)
  t.is(networkError(coded('UND_ERR_ABORTED'), 'indexer http://i').code, 'ERR_UNREACHABLE')
  const refused = networkError(Object.assign(new Error('fetch failed'), { cause: { code: 'ECONNREFUSED' } }), 'provider http://p')
  t.is(refused.code, 'ERR_UNREACHABLE')
  t.regex(refused.message, /cannot reach provider http:\/\/p: ECONNREFUSED \(fetch failed\)/)
  const mine = new CairnError('ERR_RESPONSE_TOO_LARGE', 'big')
  t.is(networkError(mine, 'x'), mine)
})

test('a passed deadline is ERR_TIMEOUT whatever the socket said, or the deadline\'s own coded reason', t => {
  const controller = new AbortController()
  controller.abort()
  t.is(networkError(coded('ECONNRESET'), 'provider http://p', { signal: controller.signal, what: 'the challenge' }).code, 'ERR_TIMEOUT')
  const reasoned = new AbortController()
  reasoned.abort(new CairnError('ERR_SHUTTING_DOWN', 'stop'))
  t.is(networkError(coded('ECONNRESET'), 'p', { signal: reasoned.signal, what: 'x' }).code, 'ERR_SHUTTING_DOWN')
})

test('isNetworkFailure tells a connection\'s failure from the disk\'s or a bug', t => {
  t.true(isNetworkFailure(coded('UND_ERR_SOCKET')))
  t.true(isNetworkFailure(coded('ECONNRESET')))
  t.true(isNetworkFailure(coded('x', 'AbortError')))
  t.false(isNetworkFailure(coded('ENOSPC')))
  t.false(isNetworkFailure(new TypeError('bug')))
  t.false(isNetworkFailure(new CairnError('ERR_UNREACHABLE', 'already coded')))
})

test('error bodies: a known code is kept, an unknown one recorded beside a code from the status', t => {
  const known = providerError('http://p', 409, JSON.stringify({ error: { code: 'ERR_DEAL_STATE', message: 'not now', details: { state: 'active' } } }))
  t.is(known.code, 'ERR_DEAL_STATE')
  t.deepEqual(known.details, { state: 'active', provider: 'http://p', status: 409 })
  const unknown = providerError('http://p', 500, JSON.stringify({ error: { code: 'ERR_FROM_THE_FUTURE', message: 'new' } }))
  t.is(unknown.code, 'ERR_UNREACHABLE')
  t.is(unknown.details?.providerCode, 'ERR_FROM_THE_FUTURE')
  t.is(providerError('http://p', 404, 'nope').code, 'ERR_NOT_FOUND')
  t.is(providerError('http://p', 504, '').code, 'ERR_TIMEOUT')
  t.is(providerError('http://p', 418, '<html>').code, 'ERR_BAD_REQUEST')
  t.is(providerError('http://p', 418, '<html>').details?.providerCode, undefined)
})
