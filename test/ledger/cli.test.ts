/**
 * `cairn ledger log|export` as scripts use them: a coded error for an export
 * onto an existing file or into a missing folder, no partial file when the
 * ledger is broken, one line per entry, and a reader that stops early
 * (`ledger log | head`) is not a crash.
 */
import test from 'ava'
import { spawn } from 'node:child_process'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { seqKey } from '../../src/ledger/entry.js'
import { LevelLedger } from '../../src/ledger/level.js'
import { Repo } from '../../src/repo/repo.js'
import { BIN, cairn, tempDir } from '../helpers/cli.js'
import { dealId, provider } from './helpers.js'

async function repoWithEntries (t: { teardown: (fn: () => Promise<void>) => void }, count: number): Promise<{ dir: string, repo: string }> {
  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const path = join(tmp.path, 'repo')
  const repo = await Repo.init(path)
  const ledger = await LevelLedger.open(await repo.db(), repo.identity)
  const appends: Array<Promise<unknown>> = []
  for (let i = 1; i <= count; i++) appends.push(ledger.append('deal-proposed', { deal: dealId(i), provider, label: `deal ${i}\nwith a newline` }))
  await Promise.all(appends)
  await repo.close()
  return { dir: tmp.path, repo: path }
}

test('ledger export -o refuses an existing file and a missing folder with codes; writes a verifiable file otherwise', async t => {
  const { dir, repo } = await repoWithEntries(t, 5)
  const existing = join(dir, 'existing.ndjson')
  await writeFile(existing, 'keep me\n')
  const onto = await cairn(['--repo', repo, 'ledger', 'export', '-o', existing])
  t.is(onto.code, 2)
  t.regex(onto.stderr, /^error ERR_TARGET_EXISTS: /m)
  t.is(await readFile(existing, 'utf8'), 'keep me\n')

  const missing = await cairn(['--repo', repo, 'ledger', 'export', '-o', join(dir, 'no', 'such', 'folder', 'l.ndjson')])
  t.is(missing.code, 4)
  t.regex(missing.stderr, /^error ERR_PATH_NOT_FOUND: /m)
  t.notRegex(missing.stderr, /\n\s+at /, 'no stack trace')

  const ok = await cairn(['--repo', repo, 'ledger', 'export', '-o', join(dir, 'ledger.ndjson')])
  t.is(ok.code, 0, ok.stderr)
  t.is((await readFile(join(dir, 'ledger.ndjson'), 'utf8')).trim().split('\n').length, 5)
  t.deepEqual((await readdir(dir)).filter(n => n.endsWith('.tmp')), [])
})

test('ledger export of a broken ledger exits 3 with ERR_LEDGER_BROKEN and leaves no file, to a file or to stdout', async t => {
  const { dir, repo } = await repoWithEntries(t, 40)
  const opened = await Repo.open(repo)
  const entries = (await opened.db()).sublevel<string, Uint8Array>(['ledger', 'entries'], { valueEncoding: 'view' })
  const record = await entries.get(seqKey(30)) as Uint8Array
  record[record.length - 5] ^= 1
  await entries.put(seqKey(30), record)
  await opened.close()

  const target = join(dir, 'ledger.ndjson')
  const r = await cairn(['--repo', repo, 'ledger', 'export', '-o', target])
  t.is(r.code, 3)
  t.regex(r.stderr, /^error ERR_LEDGER_BROKEN: ledger entry 30 /m)
  t.deepEqual((await readdir(dir)).filter(n => n.startsWith('.') || n.startsWith('ledger')), [])

  const toStdout = await cairn(['--repo', repo, 'ledger', 'export'])
  t.is(toStdout.code, 3)
  t.is(toStdout.stdout, '')
})

test('ledger log | head: a reader that stops early ends the command quietly', async t => {
  const { repo } = await repoWithEntries(t, 3000)
  const child = spawn(process.execPath, [BIN, '--repo', repo, 'ledger', 'log'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  const first = await new Promise<string>((resolve) => {
    let text = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      text += d
      if (text.includes('\n')) {
        // as `head -1` does: read a line, close the pipe
        child.stdout.destroy()
        resolve(text.slice(0, text.indexOf('\n')))
      }
    })
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const code = await closed
  clearTimeout(timer)
  t.regex(first, /^\s+3000 /)
  t.is(code, 0, stderr)
  t.is(stderr, '')
})

test('ledger log prints one line per entry with proofs summarised; --json gives them whole', async t => {
  const kept = await cairn(['demo', '--keep', '--json'], { timeoutMs: 120_000 })
  t.is(kept.code, 0, kept.stderr)
  const base = (JSON.parse(kept.stdout) as { kept: string }).kept
  t.teardown(async () => { const { rm } = await import('node:fs/promises'); await rm(base, { recursive: true, force: true }) })
  const repo = join(base, 'client')
  const json = await cairn(['--repo', repo, '--json', 'ledger', 'log'])
  t.is(json.code, 0, json.stderr)
  const entries = json.stdout.trim().split('\n').map(l => JSON.parse(l) as { kind: string, proof?: { payload: { proofs: unknown[] } } })
  const passed = entries.find(e => e.kind === 'proof-passed')
  t.is(passed?.proof?.payload.proofs.length, 16)

  const human = await cairn(['--repo', repo, 'ledger', 'log'])
  t.is(human.code, 0, human.stderr)
  const lines = human.stdout.trim().split('\n')
  t.is(lines.length, entries.length)
  const proofLine = lines.find(l => / proof-passed /.test(l)) ?? ''
  t.regex(proofLine, /proof=<proof of 16 leaves signed by did:key:z6Mk/)
  t.true(proofLine.length < 400, proofLine)
  for (const line of lines) t.true(line.length < 600, line)
})
