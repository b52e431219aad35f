/**
 * `get` with `carStream` (what `cairn get --car -` does with stdout): the
 * provider's DFS CAR goes out as it is verified; a bad block stops it at the
 * last good frame with the block's code, and no other source is tried once
 * bytes went out.
 */
import test, { type ExecutionContext } from 'ava'
import { readFile, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { addToRepo } from '../../src/client/content.js'
import { makeDeal } from '../../src/client/deal.js'
import { get, parseTarget, type Source } from '../../src/client/retrieve.js'
import { cairn } from '../helpers/cli.js'
import { sampleTree, tamperingProxy, world } from './helpers.js'

function sink (): { stream: Writable, bytes: () => Buffer } {
  const parts: Buffer[] = []
  const stream = new Writable({ write (chunk: Buffer, _e, cb) { parts.push(Buffer.from(chunk)); cb() } })
  return { stream, bytes: () => Buffer.concat(parts) }
}

const named = (url: string): Source => ({ kind: 'provider', location: url, reason: 'named' })

test('get --car - streams the verified CAR; a corrupted block mid-stream is ERR_BLOCK_MISMATCH after a prefix of good frames, and final', async (t) => {
  const w = await world()
  const late = await tamperingProxy(w.provider.url, 'corrupt', 1_500_000)
  const early = await tamperingProxy(w.provider.url, 'corrupt', 150)
  try {
    const added = await addToRepo(w.client.repo, [await sampleTree(join(w.dir, 'sample'), 3 * 1024 * 1024)])
    await makeDeal({ repo: w.client.repo, ledger: w.client.ledger }, added.root, w.provider.url, { duration: 86400 * 3 })
    const car = await readFile(join(w.client.repo.piecesDir, `${added.piece.cid}.car`))
    const spool = join(w.dir, 'spool.car')

    const good = sink()
    const result = await get(w.client.repo, parseTarget(added.root), [named(w.provider.url)], { car: spool, carStream: good.stream })
    t.true(result.streamed)
    t.deepEqual(good.bytes(), car)
    t.deepEqual(await readdir(w.client.repo.tmpDir), [])
    t.false((await readdir(w.dir)).includes('spool.car'))

    // bytes already out: the good provider after it is not tried
    const cut = sink()
    const failovers: string[] = []
    const err = await t.throwsAsync(get(w.client.repo, parseTarget(added.root), [named(late.url), named(w.provider.url)], { car: spool, carStream: cut.stream }, { onFailover: (s) => failovers.push(s.location) }))
    t.is((err as { code?: string }).code, 'ERR_BLOCK_MISMATCH')
    t.deepEqual(failovers, [])
    const out = cut.bytes()
    t.true(out.length > 0 && out.length < 1_500_000, `${out.length} bytes out`)
    t.deepEqual(out, car.subarray(0, out.length), 'a prefix of the CAR, nothing of the bad block')
    t.deepEqual(await readdir(w.client.repo.tmpDir), [])

    // nothing out yet (the root block is bad): the next source serves
    const next = sink()
    const recovered = await get(w.client.repo, parseTarget(added.root), [named(early.url), named(w.provider.url)], { car: spool, carStream: next.stream })
    t.is(recovered.failed[0]?.code, 'ERR_BLOCK_MISMATCH')
    t.is(recovered.source.location, w.provider.url)
    t.deepEqual(next.bytes(), car)
  } finally {
    await late.close()
    await early.close()
    await w.cleanup()
  }
})

/** `cairn get --car -` from a provider, then through a proxy that corrupts a block mid-stream, run with `env`. */
async function carToStdout (t: ExecutionContext, env: Record<string, string> = {}): Promise<void> {
  const w = await world()
  const late = await tamperingProxy(w.provider.url, 'corrupt', 1_500_000)
  try {
    const added = await addToRepo(w.client.repo, [await sampleTree(join(w.dir, 'sample'), 3 * 1024 * 1024)])
    await makeDeal({ repo: w.client.repo, ledger: w.client.ledger }, added.root, w.provider.url, { duration: 86400 * 3 })
    const car = await readFile(join(w.client.repo.piecesDir, `${added.piece.cid}.car`))
    // no repo of its own: named providers only
    const repo = join(w.dir, 'no-repo')
    const good = await cairn(['--repo', repo, '--json', 'get', added.root, '--provider', w.provider.url, '--car', '-'], { cwd: w.dir, env })
    t.is(good.code, 0, good.stderr)
    t.deepEqual(good.stdoutBytes, car)
    t.like(JSON.parse(good.stderr) as object, { output: '-', car: true, source: { kind: 'provider' } })
    const bad = await cairn(['--repo', repo, 'get', added.root, '--provider', late.url, '--car', '-'], { cwd: w.dir, env })
    t.is(bad.code, 3)
    t.regex(bad.stderr, /error ERR_BLOCK_MISMATCH: /)
    t.true(bad.stdoutBytes.length > 0 && bad.stdoutBytes.length < 1_500_000, `${bad.stdoutBytes.length} bytes out`)
    t.deepEqual(bad.stdoutBytes, car.subarray(0, bad.stdoutBytes.length))
  } finally {
    await late.close()
    await w.cleanup()
  }
}

test('cairn get --car - from a provider: the CAR on stdout as it is verified; a corrupted block mid-stream exits 3 with ERR_BLOCK_MISMATCH after a prefix', async (t) => {
  await carToStdout(t)
})

test('cairn get --car - without the native addon (CAIRN_COMMP_ADDON names no file): every block hashed on the main thread, the same CAR, the same stop at a bad block', async (t) => {
  await carToStdout(t, { CAIRN_COMMP_ADDON: join(tmpdir(), 'cairn-no-such-addon.node') })
})
