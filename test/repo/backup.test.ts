/**
 * docs/operations.md "Backup and restore", as an operator runs it: archive a
 * provider's and a client's repos with tar after a deal, lose the originals,
 * restore elsewhere, verify both ledgers and serve the content again.
 */
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { cairn, tempDir } from '../helpers/cli.js'
import { startProviderCli } from '../helpers/provider.js'

test('a repo archived with tar and restored elsewhere verifies its ledger and serves its content', async t => {
  const kept = await cairn(['demo', '--keep', '--json'], { timeoutMs: 120_000 })
  t.is(kept.code, 0, kept.stderr)
  const demo = JSON.parse(kept.stdout) as { kept: string, root: string }
  t.teardown(async () => { await rm(demo.kept, { recursive: true, force: true }) })
  const before: Record<string, unknown> = {}
  for (const name of ['provider', 'client']) {
    const v = await cairn(['--repo', join(demo.kept, name), '--json', 'ledger', 'verify'])
    t.is(v.code, 0, v.stderr)
    before[name] = JSON.parse(v.stdout)
  }

  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const archive = join(tmp.path, 'backup.tgz')
  const tar = spawnSync('tar', ['-C', demo.kept, '-czf', archive, '--exclude=provider/tmp', '--exclude=client/tmp', '--exclude=provider/admin.json', 'provider', 'client'], { encoding: 'utf8' })
  t.is(tar.status, 0, tar.stderr)
  await rm(join(demo.kept, 'provider'), { recursive: true, force: true })
  await rm(join(demo.kept, 'client'), { recursive: true, force: true })

  const restored = join(tmp.path, 'restored')
  const untar = spawnSync('sh', ['-c', `mkdir -p '${restored}' && tar -C '${restored}' -xzf '${archive}'`], { encoding: 'utf8' })
  t.is(untar.status, 0, untar.stderr)
  for (const name of ['provider', 'client']) {
    const v = await cairn(['--repo', join(restored, name), '--json', 'ledger', 'verify'])
    t.is(v.code, 0, v.stderr)
    t.deepEqual(JSON.parse(v.stdout), before[name], `${name}: the same chain, head and signer`)
  }

  // the restored provider serves the content under its deal again, verified by get
  const provider = await startProviderCli(join(restored, 'provider'))
  try {
    const out = join(tmp.path, 'got')
    const got = await cairn(['get', demo.root, '--provider', provider.url, '-o', out])
    t.is(got.code, 0, got.stderr)
    t.is(await readFile(join(out, 'README.txt'), 'utf8'), 'This directory was stored and retrieved by cairn demo.\n')
    const ls = await cairn(['--repo', join(restored, 'client'), 'ls', demo.root])
    t.is(ls.code, 0, ls.stderr)
    t.regex(ls.stdout, /README\.txt/)
  } finally {
    t.is(await provider.stop(), 0)
  }
})
