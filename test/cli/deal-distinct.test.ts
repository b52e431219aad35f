/**
 * `cairn deal --replicas N` through the real binary against two providers on
 * loopback: encrypted content gets distinct replicas by default (one root and
 * piece per provider, `replicaOf` naming the root dealt), `--no-distinct`
 * deals one piece everywhere, and plaintext `--distinct` is refused with
 * ERR_DISTINCT_NEEDS_ENCRYPTION before any provider is asked.
 */
import test from 'ava'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { cairn } from '../helpers/cli.js'
import { TERMS, world } from '../audit/helpers.js'

interface DealLine { id: string, url: string, root: string, pieceCid: string, replicaOf?: string }

function lines (stdout: string): DealLine[] {
  return stdout.trim().split('\n').filter(l => l !== '').map(l => JSON.parse(l) as DealLine)
}

test('deal --encrypt --replicas 2: two distinct encryptions, one per provider; --no-distinct: one piece for both; each passes its audit', async t => {
  const w = await world(2)
  t.teardown(w.cleanup)
  const repo = join(w.dir, 'cli-client')
  t.is((await cairn(['--repo', repo, 'init'])).code, 0)
  const input = join(w.dir, 'in')
  await mkdir(input)
  await writeFile(join(input, 'notes.txt'), 'distinct\n')
  await writeFile(join(input, 'blob.bin'), randomBytes(50_000))
  const added = await cairn(['--repo', repo, 'add', '-Q', input])
  t.is(added.code, 0, added.stderr)
  const root = added.stdout.trim()
  const providers = ['--replicas', '2', ...w.providers.flatMap(p => ['--provider', p.url])]
  const money = ['--max-price', TERMS.pricePerGiBDay.toString(), '--start-delay', '0', '--duration', '1d']

  const refused = await cairn(['--repo', repo, 'deal', root, '--distinct', ...providers, ...money])
  t.is(refused.code, 2)
  t.regex(refused.stderr, /ERR_DISTINCT_NEEDS_ENCRYPTION/)

  const distinct = await cairn(['--repo', repo, '--json', 'deal', root, '--encrypt', ...providers, ...money])
  t.is(distinct.code, 0, distinct.stderr)
  const made = lines(distinct.stdout)
  t.is(made.length, 2)
  t.is(new Set(made.map(d => d.pieceCid)).size, 2)
  t.is(new Set(made.map(d => d.root)).size, 2)
  for (const d of made) {
    t.is(d.replicaOf, root)
    t.not(d.root, root)
  }

  const same = await cairn(['--repo', repo, '--json', 'deal', root, '--encrypt', '--no-distinct', ...providers, ...money])
  t.is(same.code, 0, same.stderr)
  const shared = lines(same.stdout)
  t.is(shared.length, 2)
  t.is(shared[0].pieceCid, shared[1].pieceCid)

  // each replica's own piece passes its audit
  const audit = await cairn(['--repo', repo, '--json', 'audit', ...made.map(d => d.id)])
  t.is(audit.code, 0, audit.stderr)
  t.deepEqual(lines(audit.stdout).map(r => (r as unknown as { outcome: string }).outcome), ['passed', 'passed'])
})
