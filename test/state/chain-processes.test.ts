/**
 * Two node processes append to one hash chain on PostgreSQL through the state
 * store, at the same time: under the head lock their entries form ONE chain,
 * gapless, every entry linking the one before, whichever node wrote it.
 */
import test from 'ava'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { Db } from '../../src/postgres/db.js'
import { migrate } from '../../src/postgres/migrate.js'
import { PgStore } from '../../src/state/pg.js'
import { testSpace } from '../../src/state/spaces.js'
import { testDatabase } from '../helpers/postgres.js'
import { readChain } from './chain.js'

const NODE = fileURLToPath(new URL('./chain-node.js', import.meta.url))

test('two processes appending concurrently produce one gapless chain', async (t) => {
  const database = await testDatabase()
  const db = await Db.connect({ url: database.url })
  t.teardown(async () => { await db.close(); await database.cleanup() })
  await migrate(db)
  const count = 400
  const nodes = ['a', 'b'].map((name) => {
    const child = spawn(process.execPath, [NODE, database.url, 'shared-chain', name, String(count)], { stdio: ['pipe', 'pipe', 'inherit'], timeout: 120_000 })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
    const exited = once(child, 'exit')
    const ready = Promise.race([
      (async () => { while (!out.includes('ready')) await once(child.stdout, 'data') })(),
      exited.then(([code]) => { throw new Error(`node ${name} exited (${String(code)}) before it was ready`) })
    ])
    return { child, ready, exited, output: () => out }
  })
  await Promise.all(nodes.map(n => n.ready))
  for (const n of nodes) n.child.stdin.end('go\n')
  for (const n of nodes) t.deepEqual(await n.exited, [0, null])
  t.deepEqual(nodes.map(n => n.output()), ['ready\ndone\n', 'ready\ndone\n'])
  const chain = await readChain(new PgStore(db), testSpace('shared-chain'))
  t.is(chain.length, 2 * count)
  const payloads = chain.map(l => l.payload)
  t.is(new Set(payloads).size, 2 * count)
  for (const node of ['a', 'b']) {
    const mine = payloads.filter(p => p.startsWith(`${node}-`))
    t.deepEqual(mine, Array.from({ length: count }, (_, i) => `${node}-${i}`), `node ${node}'s entries in the order it appended them`)
  }
  // the chain alternates between the nodes somewhere: they really did append at the same time
  t.true(payloads.some((p, i) => i > 0 && p[0] !== payloads[i - 1]?.[0]))
})
