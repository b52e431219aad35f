/**
 * Every request body has a deadline (a JSON body sent a byte at a time is
 * cut off with 408 ERR_TIMEOUT however often a byte comes), connections are
 * capped per address and in total (503 ERR_TOO_MANY_CONNECTIONS), and a
 * client that goes away mid-request is logged once as an aborted request,
 * never as ERR_INTERNAL.
 */
import test from 'ava'
import { connect, type Socket } from 'node:net'
import { startProvider, type Running } from './fixtures.js'

function socketTo (url: string, localAddress = '127.0.0.1'): Promise<{ socket: Socket, said: () => string, closed: Promise<void> }> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect({ port: Number(port), host: hostname, localAddress })
    let said = ''
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => { said += d })
    socket.on('error', () => {})
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    socket.once('connect', () => resolve({ socket, said: () => said, closed }))
    socket.once('error', reject)
  })
}

async function withProvider (t: import('ava').ExecutionContext, limits: Parameters<typeof startProvider>[0]): Promise<Running> {
  const run = await startProvider(limits)
  t.teardown(async () => await run.service.close())
  return run
}

test('a JSON body sent a byte at a time is cut off at its deadline with 408 ERR_TIMEOUT', async (t) => {
  const run = await withProvider(t, { bodyTimeoutMs: 400, idleTimeoutMs: 10_000 })
  const { socket, said, closed } = await socketTo(run.url)
  const body = '{"payloadSize": 100, "pieceCid": "bafk"}'
  socket.write(`POST /v1/deals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`)
  const started = Date.now()
  const dripping = (async () => {
    for (const ch of body) {
      if (socket.destroyed) return
      socket.write(ch)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  })()
  await closed
  await dripping
  t.regex(said(), /^HTTP\/1\.1 408 /)
  t.regex(said(), /"code":"ERR_TIMEOUT"/)
  t.true(Date.now() - started < 3000, 'cut off long before the body would have ended')
})

test('connections past the cap per address, and in total, are answered 503 ERR_TOO_MANY_CONNECTIONS', async (t) => {
  const run = await withProvider(t, { maxConnectionsPerPeer: 3, maxConnections: 5, idleTimeoutMs: 10_000, headersTimeoutMs: 10_000 })
  const held: Socket[] = []
  t.teardown(() => { for (const s of held) s.destroy() })
  for (let i = 0; i < 3; i++) held.push((await socketTo(run.url)).socket)
  const fourth = await socketTo(run.url)
  await fourth.closed
  t.regex(fourth.said(), /^HTTP\/1\.1 503 /)
  t.regex(fourth.said(), /"code":"ERR_TOO_MANY_CONNECTIONS".*per address is 3/)
  for (let i = 0; i < 2; i++) held.push((await socketTo(run.url, '127.0.0.2')).socket)
  const sixth = await socketTo(run.url, '127.0.0.3')
  await sixth.closed
  t.regex(sixth.said(), /"code":"ERR_TOO_MANY_CONNECTIONS".*5 connections open/)
  // once some close, others are served again
  held.shift()?.destroy()
  await new Promise(resolve => setTimeout(resolve, 100))
  const res = await fetch(`${run.url}/healthz`)
  t.is(res.status, 200)
})

test('a client that goes away in the middle of its JSON body is logged once, as aborted, not ERR_INTERNAL', async (t) => {
  const run = await withProvider(t, {})
  const { socket, closed } = await socketTo(run.url)
  socket.write('POST /v1/deals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"payloadSize": ')
  await new Promise(resolve => setTimeout(resolve, 100))
  socket.destroy()
  await closed
  for (let i = 0; i < 100 && !run.logs.some(l => l.event === 'request-aborted'); i++) await new Promise(resolve => setTimeout(resolve, 20))
  await new Promise(resolve => setTimeout(resolve, 100))
  const lines = run.logs.filter(l => l.event !== 'deal-accepted')
  t.deepEqual(lines.map(l => l.event), ['request-aborted'], JSON.stringify(lines))
  t.like(lines[0]?.fields, { method: 'POST', route: '/v1/deals', received: 16 })
  const metrics = await (await fetch(`${run.url}/metrics`)).text()
  t.false(metrics.includes('ERR_INTERNAL'))
  // counted apart from errors (a client hanging up is none of ours)
  t.regex(metrics, /cairn_http_requests_aborted_total\{route="\/v1\/deals"\} 1/)
  t.false(metrics.includes('ERR_CLIENT_ABORTED'))
})
