// The provider dashboard: logs in with the admin token (kept in this tab's
// sessionStorage only), then polls /admin/v1/dashboard every second and draws
// small hand-written SVG charts. Everything it loads comes from this listener.
'use strict'

const $ = (id) => document.getElementById(id)
const SVG = 'http://www.w3.org/2000/svg'
const history = { rate: [], loop: [] }
let last
let timer

function formatBytes (n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`
}

const short = (s) => typeof s === 'string' && s.length > 24 ? `${s.slice(0, 12)}…${s.slice(-6)}` : String(s ?? '')

async function api (path) {
  const res = await fetch(path, { headers: { authorization: `Bearer ${sessionStorage.getItem('cairn-token')}` }, cache: 'no-store' })
  if (res.status === 401) throw Object.assign(new Error('the token was not accepted'), { code: 'ERR_UNAUTHORIZED' })
  if (!res.ok) throw new Error(`the admin API answered ${res.status}`)
  return await res.json()
}

function el (tag, attrs = {}, text) {
  const node = tag === 'svg' || ['rect', 'line', 'polyline', 'text', 'g'].includes(tag) ? document.createElementNS(SVG, tag) : document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v))
  if (text !== undefined) node.textContent = text
  return node
}

function clear (node) { while (node.firstChild) node.removeChild(node.firstChild) }

function bars (svg, items) {
  clear(svg)
  const max = Math.max(1, ...items.map(([, v]) => v))
  const w = 300 / Math.max(items.length, 1)
  items.forEach(([label, value, cls], i) => {
    const h = 110 * value / max
    svg.append(el('rect', { x: i * w + 4, y: 120 - h, width: Math.max(w - 8, 1), height: h, fill: cls ?? '#3b6fd8' }))
    svg.append(el('text', { x: i * w + w / 2, y: 134, 'text-anchor': 'middle', 'font-size': 9 }, label))
    svg.append(el('text', { x: i * w + w / 2, y: 116 - h, 'text-anchor': 'middle', 'font-size': 9 }, String(value)))
  })
  if (items.length === 0) svg.append(el('text', { x: 150, y: 70, 'text-anchor': 'middle', 'font-size': 11, fill: '#888' }, 'none yet'))
}

function line (svg, values, format) {
  clear(svg)
  const max = Math.max(1e-9, ...values)
  const step = 300 / Math.max(values.length - 1, 1)
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(125 - 115 * v / max).toFixed(1)}`).join(' ')
  svg.append(el('line', { x1: 0, y1: 125, x2: 300, y2: 125, stroke: '#ccd' }))
  svg.append(el('polyline', { points, fill: 'none', stroke: '#3b6fd8', 'stroke-width': 2 }))
  svg.append(el('text', { x: 2, y: 10, 'font-size': 9, fill: '#555' }, `max ${format(max)}`))
  if (values.length > 0) svg.append(el('text', { x: 298, y: 138, 'text-anchor': 'end', 'font-size': 9, fill: '#555' }, `now ${format(values.at(-1))}`))
}

function render (d) {
  $('who').textContent = `${d.did} · ${d.url} · since ${d.startedAt}`
  const cap = d.capacity
  $('capacity-text').textContent = `${formatBytes(cap.used)} used · ${formatBytes(cap.free)} free of ${formatBytes(cap.total)}`
  const bar = $('capacity-bar')
  clear(bar)
  bar.append(el('rect', { x: 0, y: 0, width: 300, height: 16, fill: '#e3e6eb' }))
  bar.append(el('rect', { x: 0, y: 0, width: 300 * (cap.total > 0 ? cap.used / cap.total : 0), height: 16, fill: '#3b6fd8' }))
  $('earnings').textContent = d.earnings
  $('retrievals').textContent = String(d.retrievals.count)
  $('retrieval-bytes').textContent = `${formatBytes(d.retrievals.bytes)} sent`
  $('loop').textContent = `${d.eventLoop.p99Ms.toFixed(1)} / ${d.eventLoop.maxMs.toFixed(1)} ms`
  if (d.selfCheck) {
    const bad = d.selfCheck.checked.filter((c) => c.outcome !== 'ok')
    $('self-check').textContent = bad.length === 0 ? `ok · ${d.selfCheck.checked.length} of ${d.selfCheck.pieces} pieces` : `${bad.length} FAILING: ${bad.map((c) => `${c.pieceCid} ${c.code}`).join(', ')}`
    $('self-check-when').textContent = `last round ${d.selfCheck.at}`
    const trip = d.selfCheck.roundTrip
    if (trip) {
      $('round-trip').textContent = trip.ok
        ? `ok · ingest ${trip.ingestMs.toFixed(0)} ms · /piece ${trip.piece.firstByteMs.toFixed(0)}/${trip.piece.lastByteMs.toFixed(0)} ms · /ipfs ${trip.ipfs.firstByteMs.toFixed(0)}/${trip.ipfs.lastByteMs.toFixed(0)} ms`
        : `FAILED at ${trip.step}: ${trip.code}`
    }
  }

  bars($('deals-chart'), Object.entries(d.deals).map(([state, n]) => [state, n, state === 'active' ? '#1b7f3b' : state === 'failed' ? '#b3261e' : '#3b6fd8']))
  bars($('proof-chart'), d.proofs.slice(-20).map((p) => [p.at.slice(11, 19), p.ms, p.outcome === 'answered' ? '#1b7f3b' : '#b3261e']))
  const now = Date.now()
  if (last !== undefined) {
    history.rate.push(Math.max(0, (d.retrievals.bytes - last.bytes) * 1000 / Math.max(1, now - last.at)))
    history.loop.push(d.eventLoop.p99Ms)
    for (const h of Object.values(history)) if (h.length > 120) h.shift()
  }
  last = { bytes: d.retrievals.bytes, at: now }
  line($('rate-chart'), history.rate, (v) => `${formatBytes(v)}/s`)
  line($('loop-chart'), history.loop, (v) => `${v.toFixed(1)} ms`)

  const deals = $('deals').tBodies[0]
  clear(deals)
  for (const deal of d.recentDeals) {
    const tr = el('tr', { 'data-deal': deal.id })
    for (const [text, cls] of [[deal.id], [deal.state, `state-${deal.state}`], [short(deal.pieceCid)], [deal.pieceSize === undefined ? '' : formatBytes(Number(deal.pieceSize))], [short(deal.client)], [`${deal.passed ?? 0}/${deal.failed ?? 0}/${deal.missed ?? 0}`], [deal.updated]]) {
      tr.append(el('td', cls === undefined ? {} : { class: cls }, text))
    }
    deals.append(tr)
  }
  const proofs = $('proofs').tBodies[0]
  clear(proofs)
  for (const p of d.proofs.slice().reverse()) {
    const tr = el('tr')
    tr.append(el('td', {}, p.at), el('td', {}, short(p.deal)), el('td', { class: `outcome-${p.outcome}` }, p.outcome), el('td', {}, `${p.ms} ms`))
    proofs.append(tr)
  }
  $('updated').textContent = `updated ${new Date().toISOString()}`
}

async function refresh () {
  try {
    render(await api('/admin/v1/dashboard'))
  } catch (err) {
    if (err.code === 'ERR_UNAUTHORIZED') { logout(err.message); return }
    $('updated').textContent = `not updated: ${err.message}`
  }
}

function show (loggedIn) {
  $('login').hidden = loggedIn
  $('board').hidden = !loggedIn
  $('logout').hidden = !loggedIn
}

function logout (message = '') {
  clearInterval(timer)
  sessionStorage.removeItem('cairn-token')
  $('login-error').textContent = message
  show(false)
}

async function login (token) {
  sessionStorage.setItem('cairn-token', token)
  try {
    render(await api('/admin/v1/dashboard'))
  } catch (err) {
    logout(err.message)
    return
  }
  $('login-error').textContent = ''
  show(true)
  clearInterval(timer)
  timer = setInterval(refresh, 1000)
}

$('login').addEventListener('submit', (event) => {
  event.preventDefault()
  void login($('token').value.trim())
})
$('logout').addEventListener('click', () => logout())
if (sessionStorage.getItem('cairn-token') !== null) void login(sessionStorage.getItem('cairn-token'))
