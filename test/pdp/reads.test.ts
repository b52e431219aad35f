/**
 * A data-set change's reads, checked again where it commits (src/pdp/reads.ts):
 * the guard refuses when a key read holds something else (or is gone, or
 * appeared), and the change is run again from fresh reads until it sees a
 * state that holds.
 */
import test from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { IndexView } from '../../src/ledger/interface.js'
import { CairnError } from '../../src/errors.js'
import { ReadSet, retryChanged } from '../../src/pdp/reads.js'
import { LevelStore } from '../../src/state/level.js'
import { testSpace } from '../../src/state/spaces.js'
import { rejectsCode } from '../helpers/errors.js'

const space = testSpace('reads')
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

async function store (t: { teardown: (fn: () => Promise<void>) => void }): Promise<LevelStore> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-pdp-reads-'))
  const s = await LevelStore.open(dir)
  t.teardown(async () => { await s.close(); await rm(dir, { recursive: true, force: true }) })
  return s
}

const viewOf = (s: LevelStore): IndexView => ({ state: async (sp, key) => await s.get(sp, key) }) as IndexView

test('the guard passes while every key read holds what it held, and refuses a changed, removed or new one with ERR_STATE_CHANGED', async t => {
  const s = await store(t)
  await s.batch([{ type: 'put', space, key: 'a', value: bytes('1') }, { type: 'put', space, key: 'b', value: bytes('2') }])
  const reads = new ReadSet(s)
  t.deepEqual(new Uint8Array(await reads.get(space, 'a') ?? []), bytes('1'))
  await reads.get(space, 'b')
  t.is(await reads.get(space, 'absent'), undefined)
  const guard = reads.guard()
  await t.notThrowsAsync(guard(viewOf(s)))
  // the same bytes written again are no change
  await s.batch([{ type: 'put', space, key: 'a', value: bytes('1') }])
  await t.notThrowsAsync(guard(viewOf(s)))
  await s.batch([{ type: 'put', space, key: 'a', value: bytes('3') }])
  await rejectsCode(t, guard(viewOf(s)), 'ERR_STATE_CHANGED')
  await s.batch([{ type: 'put', space, key: 'a', value: bytes('1') }, { type: 'del', space, key: 'b' }])
  await rejectsCode(t, guard(viewOf(s)), 'ERR_STATE_CHANGED')
  await s.batch([{ type: 'put', space, key: 'b', value: bytes('2') }, { type: 'put', space, key: 'absent', value: bytes('x') }])
  await rejectsCode(t, guard(viewOf(s)), 'ERR_STATE_CHANGED')
})

test('a change refused with ERR_STATE_CHANGED runs again until it holds; one that never holds gives up with the code', async t => {
  let runs = 0
  t.is(await retryChanged(async () => {
    runs++
    if (runs < 3) throw new CairnError('ERR_STATE_CHANGED', 'moved')
    return 'done'
  }), 'done')
  t.is(runs, 3)
  let tries = 0
  await rejectsCode(t, retryChanged(async () => { tries++; throw new CairnError('ERR_STATE_CHANGED', 'moved') }), 'ERR_STATE_CHANGED')
  t.is(tries, 8)
  // any other error is not run again
  let other = 0
  await rejectsCode(t, retryChanged(async () => { other++; throw new CairnError('ERR_PIECE_NOT_FOUND', 'gone') }), 'ERR_PIECE_NOT_FOUND')
  t.is(other, 1)
})
