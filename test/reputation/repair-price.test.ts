/**
 * A repair is held to the client's price policy — its --max-price when it
 * dealt, or the default ceiling — not to the failed deal's price: with four
 * providers asking 31–34 and the three cheapest holding the piece, the fourth
 * takes the replacement. When no provider qualifies, `watch` says so loudly
 * and exits non-zero at the end of its run.
 */
import test from 'ava'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cairn } from '../helpers/cli.js'
import { world, type World } from '../audit/helpers.js'

/** Four providers asking 31, 32, 33 and 34 per GiB per day, a client that knows them, and content added. */
async function priced (name: string): Promise<{ w: World, repo: string, root: string }> {
  const w = await world(4)
  w.providers.forEach((p, i) => { p.terms.pricePerGiBDay = 31n + BigInt(i) })
  const repo = join(w.dir, name)
  await cairn(['init', '--repo', repo])
  for (const p of w.providers) await cairn(['providers', 'add', p.url, '--repo', repo])
  const sample = join(w.dir, `${name}-sample`)
  await mkdir(sample)
  await writeFile(join(sample, 'a.bin'), randomBytes(5000))
  const root = (await cairn(['add', sample, '--repo', repo, '-Q'])).stdout.trim()
  return { w, repo, root }
}

async function corruptFirst (w: World, made: { stdout: string }): Promise<{ id: string, url: string }> {
  const deals = made.stdout.trim().split('\n').map(l => JSON.parse(l) as { id: string, url: string, pieceCid: string })
  const bad = deals[0]!
  const provider = w.providers.find(p => p.url === bad.url)!
  const path = provider.store.path(bad.pieceCid)
  const bytes = await readFile(path)
  await writeFile(path, Buffer.concat([bytes.subarray(0, 64), randomBytes(bytes.length - 64)]))
  return bad
}

const WATCH = ['watch', '--max-periods', '3', '--until', '90s', '--tick', '50ms', '--timeout', '1500ms', '--retries', '0']

test('without --max-price, a replica at 31 is repaired onto the provider asking 34', async (t) => {
  const { w, repo, root } = await priced('cli-client')
  t.teardown(w.cleanup)
  const made = await cairn(['deal', root, '--replicas', '3', '--duration', '1d', '--repo', repo, '--json'])
  t.is(made.code, 0, made.stderr)
  const prices = made.stdout.trim().split('\n').map(l => (JSON.parse(l) as { pricePerGiBDay: string }).pricePerGiBDay).sort()
  t.deepEqual(prices, ['31', '32', '33'])
  const bad = await corruptFirst(w, made)
  const watched = await cairn([...WATCH, '--repo', repo], { timeoutMs: 120_000 })
  t.is(watched.code, 0, watched.stdout + watched.stderr)
  const repaired = watched.stdout.split('\n').filter(l => l.startsWith(`repaired ${bad.id}`))
  t.is(repaired.length, 1, watched.stdout)
  t.true(repaired[0]!.endsWith(`at ${w.providers[3]!.url}`), repaired[0])
})

test('with --max-price 33, no provider qualifies: watch says so and exits non-zero', async (t) => {
  const { w, repo, root } = await priced('strict')
  t.teardown(w.cleanup)
  const made = await cairn(['deal', root, '--replicas', '3', '--duration', '1d', '--max-price', '33', '--repo', repo, '--json'])
  t.is(made.code, 0, made.stderr)
  const bad = await corruptFirst(w, made)
  const watched = await cairn([...WATCH, '--json', '--repo', repo], { timeoutMs: 120_000 })
  t.is(watched.code, 4, watched.stdout + watched.stderr)
  // for a script: the unrepaired deal, the summary counting it, then the error (docs/json.md)
  const lines = watched.stdout.trim().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
  t.like(lines.find(l => l.outcome === 'unrepaired'), { deal: bad.id, code: 'ERR_NO_REPAIR_TARGET' })
  t.like(lines.at(-2), { summary: { unrepaired: 1 } })
  t.like(lines.at(-1), { error: { code: 'ERR_NO_REPAIR_TARGET' } })
  t.regex(watched.stderr, /error ERR_NO_REPAIR_TARGET: repair of \S+ failed: .*asks 34 per GiB per day, above --max-price 33/)
  t.regex(watched.stderr, /error ERR_NO_REPAIR_TARGET: 1 deal needed a repair that could not be made/)
})
