/**
 * The client killed with SIGKILL mid-deal and mid-get (`cairn deal`, `cairn
 * get` as real processes against a real provider process), at moments spread
 * from start-up through proposal, upload and write-out. After each kill: the
 * client's ledger verifies, the next command on the repo leaves no temporary
 * file, a `get` target is absent or complete and byte-identical (never
 * partial), and the same command run again completes.
 */
import test from 'ava'
import { spawn } from 'node:child_process'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BIN, cairn, tempDir } from '../helpers/cli.js'
import { bytesOf } from '../provider/fixtures.js'
import { scale, startProviderProcess, summarize } from './helpers.js'

const KILLS = Number(process.env.CAIRN_CLIENT_KILLS ?? scale(4, 20))

/** Runs the binary and SIGKILLs it after `ms`; resolves with how it ended. */
async function killedAfter (args: string[], ms: number): Promise<{ code: number | null, signal: string | null }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore', env: { ...process.env, CAIRN_REPO: '' } })
  const timer = setTimeout(() => child.kill('SIGKILL'), ms)
  return await new Promise((resolve) => child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal }) }))
}

test('SIGKILL of the client mid-deal and mid-get: ledger verifies, nothing partial or temporary is left, the command completes when run again', async (t) => {
  t.timeout(20 * 60_000)
  const dir = await tempDir('cairn-client-crash-')
  const providerRepo = join(dir.path, 'provider')
  const clientRepo = join(dir.path, 'client')
  const getRepo = join(dir.path, 'getter')
  const stats = { deal: 0, get: 0, dealKilled: 0, getKilled: 0, partial: 0 }
  try {
    for (const repo of [providerRepo, clientRepo, getRepo]) t.is((await cairn(['init', '--repo', repo])).code, 0)
    const provider = await startProviderProcess(providerRepo)
    try {
      const sample = join(dir.path, 'sample')
      await mkdir(join(sample, 'sub'), { recursive: true })
      await writeFile(join(sample, 'big.bin'), bytesOf(3 << 20, 5))
      await writeFile(join(sample, 'sub', 'small.txt'), 'small\n')
      const added = await cairn(['add', sample, '--repo', clientRepo, '--json'])
      t.is(added.code, 0, added.stderr)
      const root = (JSON.parse(added.stdout) as { root: string }).root
      t.is((await cairn(['providers', 'add', provider.url, '--repo', clientRepo])).code, 0)

      for (let k = 0; k < KILLS; k++) {
        const ms = 300 + Math.floor((k / Math.max(1, KILLS - 1)) * 2700)
        const r = await killedAfter(['deal', root, '--repo', clientRepo, '--provider', provider.url, '--duration', '30d', '--json'], ms)
        stats.deal++
        if (r.signal === 'SIGKILL') stats.dealKilled++
        const verify = await cairn(['ledger', 'verify', '--repo', clientRepo])
        t.is(verify.code, 0, `client ledger verifies after a kill at ${ms} ms: ${verify.stderr}`)
        t.deepEqual(await readdir(join(clientRepo, 'tmp')), [], 'the next command on the repo leaves no temporary file')
      }
      const again = await cairn(['deal', root, '--repo', clientRepo, '--provider', provider.url, '--duration', '30d', '--json'])
      t.is(again.code, 0, again.stderr)
      t.is((JSON.parse(again.stdout) as { state: string }).state, 'active')

      const want = await readFile(join(sample, 'big.bin'))
      const outDir = join(dir.path, 'out')
      await mkdir(outDir)
      for (let k = 0; k < KILLS; k++) {
        const out = join(outDir, `got${k}`)
        const ms = 150 + Math.floor((k / Math.max(1, KILLS - 1)) * 1200)
        const r = await killedAfter(['get', root, '-o', out, '--repo', getRepo, '--provider', provider.url], ms)
        stats.get++
        if (r.signal === 'SIGKILL') stats.getKilled++
        const exists = (await readdir(outDir)).includes(`got${k}`)
        if (exists) {
          t.deepEqual(await readFile(join(out, 'big.bin')), want, 'a get target that exists is complete')
        }
        const leftovers = (await readdir(outDir)).filter((n) => n.startsWith('.'))
        stats.partial += leftovers.length
        await Promise.all(leftovers.map(async (n) => await rm(join(outDir, n), { recursive: true, force: true })))
        const retry = await cairn(['get', root, '-o', out, '--repo', getRepo, '--provider', provider.url, '--force'])
        t.is(retry.code, 0, retry.stderr)
        t.deepEqual(await readFile(join(out, 'big.bin')), want)
        t.deepEqual(await readdir(join(getRepo, 'tmp')), [], 'the next get leaves the repo tmp empty')
      }
      t.is((await cairn(['ledger', 'verify', '--repo', getRepo])).code, 0)
      t.log(`deal: ${stats.dealKilled}/${stats.deal} killed; get: ${stats.getKilled}/${stats.get} killed; ${stats.partial} temporary siblings left beside a get target`)
      await summarize({ area: 'crash', what: 'client SIGKILL mid-`cairn deal` (300–3000 ms)', injected: stats.dealKilled, outcome: 'client ledger verified; repo tmp clean on next command; deal completed when run again', lost: 0 })
      await summarize({ area: 'crash', what: 'client SIGKILL mid-`cairn get` (150–1350 ms)', injected: stats.getKilled, outcome: `target absent or complete, never partial; ${stats.partial} unpack temp dirs left beside the target; get completed when run again`, lost: 0 })
      provider.child.kill('SIGTERM')
      t.is(await provider.exited, 0)
    } finally {
      await provider.kill()
    }
    t.is((await cairn(['ledger', 'verify', '--repo', providerRepo])).code, 0)
  } finally {
    await dir.cleanup()
  }
})
