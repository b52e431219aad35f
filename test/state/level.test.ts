/** The state store conformance suite on LevelDB, each test on a database of its own. */
import test from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LevelStore } from '../../src/state/level.js'
import type { StateStore } from '../../src/state/interface.js'
import { suite } from './suite.js'

const dir = await mkdtemp(join(tmpdir(), 'cairn-state-level-'))
const stores: StateStore[] = []
let n = 0

test.after.always(async () => {
  for (const store of stores) await store.close()
  await rm(dir, { recursive: true, force: true })
})

suite({
  test,
  name: 'level',
  factory: async () => {
    const store = await LevelStore.open(join(dir, `db-${++n}`))
    stores.push(store)
    return store
  }
})
