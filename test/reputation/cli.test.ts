/**
 * The binary against three loopback providers: `deal --replicas 2` without
 * --provider places by reputation on distinct providers and says why;
 * `providers ls` shows score, passed, failed, missed and last seen, and the
 * score rises once audits pass.
 */
import test from 'ava'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cairn } from '../helpers/cli.js'
import { TERMS, world } from '../audit/helpers.js'

interface Listed { url: string, did: string, lastSeen: string, reputation: { score: number, passes: number, failures: number, misses: number } }

test('CLI: deal --replicas places by reputation with reasons; providers ls shows the reputation', async (t) => {
  const w = await world(3)
  try {
    const repo = join(w.dir, 'cli-client')
    t.is((await cairn(['init', '--repo', repo])).code, 0)
    for (const p of w.providers) {
      const r = await cairn(['providers', 'add', p.url, '--repo', repo])
      t.is(r.code, 0, r.stderr)
    }
    const sample = join(w.dir, 'cli-sample')
    await mkdir(sample)
    await writeFile(join(sample, 'a.bin'), randomBytes(2000))
    const added = await cairn(['add', sample, '--repo', repo, '-Q'])
    t.is(added.code, 0, added.stderr)
    const root = added.stdout.trim()

    const human = await cairn(['deal', root, '--replicas', '2', '--duration', '1d', '--max-price', String(TERMS.pricePerGiBDay), '--repo', repo])
    t.is(human.code, 0, human.stderr)
    const chose = human.stdout.split('\n').filter(l => l.startsWith('chose '))
    t.is(chose.length, 2)
    for (const line of chose) t.regex(line, /^chose http:\/\/127\.0\.0\.1:\d+ \(did:key:z\w+\): rank \d: score 0\.050 \(5th percentile of the pass rate\), no audits yet/)
    t.is(human.stdout.split('\n').filter(l => l.startsWith('deal ')).length, 2)
    const hosts = chose.map(l => /^chose (\S+)/.exec(l)?.[1])
    t.not(hosts[0], hosts[1])

    const before = JSON.parse((await cairn(['providers', 'ls', '--repo', repo, '--json'])).stdout) as Listed[]
    t.is(before.length, 3)
    for (const p of before) t.deepEqual({ ...p.reputation, score: Number(p.reputation.score.toFixed(3)) }, { ...p.reputation, score: 0.05, passes: 0, failures: 0, misses: 0 })

    const audit = await cairn(['audit', '--all', '--repo', repo])
    t.is(audit.code, 0, audit.stderr)
    const after = JSON.parse((await cairn(['providers', 'ls', '--repo', repo, '--json'])).stdout) as Listed[]
    const audited = after.filter(p => hosts.includes(p.url))
    t.is(audited.length, 2)
    for (const p of audited) {
      t.is(p.reputation.passes, 1)
      t.true(p.reputation.score > 0.05)
    }
    const table = await cairn(['providers', 'ls', '--repo', repo])
    t.regex(table.stdout, /^url\s+did\s+price\/GiB\/day\s+free\s+score\s+passed\s+failed\s+missed\s+last seen/)
  } finally {
    await w.cleanup()
  }
})

test('CLI: watch repairs a replica whose provider corrupts its copy, printing the repair', async (t) => {
  const w = await world(4)
  try {
    const repo = join(w.dir, 'cli-client')
    t.is((await cairn(['init', '--repo', repo])).code, 0)
    for (const p of w.providers) t.is((await cairn(['providers', 'add', p.url, '--repo', repo])).code, 0)
    const sample = join(w.dir, 'cli-sample')
    await mkdir(sample)
    await writeFile(join(sample, 'a.bin'), randomBytes(5000))
    const root = (await cairn(['add', sample, '--repo', repo, '-Q'])).stdout.trim()
    const made = await cairn(['deal', root, '--replicas', '3', '--duration', '1d', '--max-price', String(TERMS.pricePerGiBDay), '--repo', repo, '--json'])
    t.is(made.code, 0, made.stderr)
    const deals = made.stdout.trim().split('\n').map(l => JSON.parse(l) as { id: string, url: string, pieceCid: string, placement: string })
    t.is(deals.length, 3)
    for (const d of deals) t.regex(d.placement, /^rank \d: score/)
    const spare = w.providers.find(p => !deals.some(d => d.url === p.url))
    const bad = deals[0]
    const badProvider = w.providers.find(p => p.url === bad.url)
    if (spare === undefined || badProvider === undefined) throw new Error('placement did not use three of the four providers')
    const path = badProvider.store.path(bad.pieceCid)
    const bytes = await readFile(path)
    await writeFile(path, Buffer.concat([bytes.subarray(0, 64), randomBytes(bytes.length - 64)]))

    const watched = await cairn(['watch', '--repo', repo, '--max-periods', '3', '--until', '90s', '--tick', '50ms', '--timeout', '1500ms', '--retries', '0'], { timeoutMs: 120_000 })
    t.is(watched.code, 0, watched.stderr)
    const repaired = watched.stdout.split('\n').filter(l => l.startsWith('repaired '))
    t.is(repaired.length, 1, watched.stdout + watched.stderr)
    t.true(repaired[0].startsWith(`repaired ${bad.id}: deal ${bad.id} faulted 2 times in a row`), repaired[0])
    t.true(repaired[0].endsWith(`at ${spare.url}`), repaired[0])
    const shown = JSON.parse((await cairn(['deals', 'show', bad.id, '--repo', repo, '--json'])).stdout) as { state: string }
    t.is(shown.state, 'terminated')
    const verify = await cairn(['ledger', 'verify', '--repo', repo])
    t.is(verify.code, 0, verify.stderr)
  } finally {
    await w.cleanup()
  }
})
