/**
 * `cairn provider start|status|deals` as a user runs them: the real binary on
 * loopback, the admin API found through the repo's admin.json, and a clean
 * stop on SIGTERM.
 */
import test from 'ava'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BIN, cairn } from '../helpers/cli.js'

test('provider start serves, status/deals reach it over the admin API, SIGTERM stops it cleanly', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-provider-cli-'))
  const repo = join(dir, 'repo')
  try {
    t.is((await cairn(['init', '--repo', repo])).code, 0)
    const notRunning = await cairn(['provider', 'status', '--repo', repo])
    t.is(notRunning.code, 4)
    t.regex(notRunning.stderr, /ERR_PROVIDER_NOT_RUNNING/)

    const child = spawn(process.execPath, [BIN, 'provider', 'start', '--repo', repo, '--listen', '127.0.0.1:0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = ''
        child.stdout.setEncoding('utf8').on('data', (d: string) => {
          out += d
          if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')))
        })
        child.on('close', () => reject(new Error(`provider exited early: ${stderr}`)))
      })
      const started = JSON.parse(line) as { url: string, did: string, admin: string }
      t.regex(started.url, /^http:\/\/127\.0\.0\.1:\d+$/)
      t.is((await fetch(`${started.url}/healthz`)).status, 200)

      const file = join(repo, 'admin.json')
      t.is((await stat(file)).mode & 0o777, 0o600)
      const endpoint = JSON.parse(await readFile(file, 'utf8')) as { url: string, token: string }
      t.is(endpoint.url, started.admin)

      const status = await cairn(['provider', 'status', '--repo', repo, '--json'])
      t.is(status.code, 0, status.stderr)
      const s = JSON.parse(status.stdout) as { did: string, capacity: { free: number }, deals: Record<string, number> }
      t.is(s.did, started.did)
      t.true(s.capacity.free > 0)
      const human = await cairn(['provider', 'status', '--repo', repo])
      t.regex(human.stdout, /capacity/)
      const deals = await cairn(['provider', 'deals', '--repo', repo, '--state', 'active', '--json'])
      t.is(deals.code, 0)
      t.deepEqual(JSON.parse(deals.stdout), [])

      const noToken = await fetch(`${endpoint.url}/admin/v1/status`)
      t.is(noToken.status, 401)
      t.is(((await noToken.json()) as { error: { code: string } }).error.code, 'ERR_UNAUTHORIZED')
      const wrong = await fetch(`${endpoint.url}/admin/v1/status`, { headers: { authorization: `Bearer ${'A'.repeat(endpoint.token.length)}` } })
      t.is(wrong.status, 401)

      // the ledger is locked by the running provider
      const ask = await fetch(`${started.url}/v1/ask`)
      t.is(ask.status, 200)

      child.kill('SIGTERM')
      t.is(await exited, 0, stderr)
      t.regex(stderr, /provider-stopped/)
      await t.throwsAsync(stat(file))
    } finally {
      clearTimeout(killer)
      child.kill('SIGKILL')
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
