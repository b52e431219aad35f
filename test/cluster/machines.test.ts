/**
 * Cluster nodes in cluster_machines: registered, heartbeating, declared dead
 * by whichever node notices their silence — which frees their tasks — and
 * registered again when they come back.
 */
import test from 'ava'
import { CairnError } from '../../src/errors.js'
import { listMachines, Machine } from '../../src/cluster/machines.js'
import { addTask } from '../../src/cluster/tasks.js'
import { clusterDatabase, until } from './helpers.js'

test('nodes register, are listed by name, and leave on stop', async (t) => {
  const c = await clusterDatabase()
  t.teardown(c.cleanup)
  const a = await Machine.register(c.db, { name: 'node-a', address: 'http://10.0.0.1:7470' })
  const b = await Machine.register(c.db, { name: 'node-b', address: 'http://10.0.0.2:7470' })
  t.not(a.id, b.id)
  const listed = await listMachines(c.db)
  t.deepEqual(listed.map(m => [m.id, m.name, m.address]), [[a.id, 'node-a', 'http://10.0.0.1:7470'], [b.id, 'node-b', 'http://10.0.0.2:7470']])
  t.true(listed.every(m => m.silentMs >= 0 && m.heartbeatAt >= m.startedAt))
  t.true(await a.heartbeat())
  await a.stop()
  await b.stop()
  t.deepEqual(await listMachines(c.db), [])
})

test('a node silent for dead-after is removed by another, which frees its tasks; it registers again when it comes back', async (t) => {
  const c = await clusterDatabase()
  t.teardown(c.cleanup)
  const events: string[] = []
  const quiet = await Machine.register(c.db, { name: 'quiet', address: 'test://quiet', deadAfterMs: 400, heartbeatMs: 100 })
  const watcher = await Machine.register(c.db, { name: 'watcher', address: 'test://watcher', deadAfterMs: 400, heartbeatMs: 100, onEvent: (e, f) => { events.push(`${e} ${String(f?.name)}`) } })
  t.teardown(async () => { await watcher.stop() })
  const id = await addTask(c.db, 'copy')
  await c.db.query('UPDATE cluster_tasks SET owner = $1 WHERE id = $2', [quiet.id, id])
  const oldId = quiet.id
  quiet.silence()
  await until(async () => (await listMachines(c.db)).length === 1, 'the watcher removed the quiet node', 30_000)
  t.deepEqual(events.filter(e => e.startsWith('machine-dead')), ['machine-dead quiet'])
  t.deepEqual((await c.db.query('SELECT owner FROM cluster_tasks WHERE id = $1', [id])).rows, [{ owner: null }], 'its task is free again')
  t.false(await quiet.heartbeat(), 'it learns it was declared dead')
  t.not(quiet.id, oldId, 'and comes back under a new id')
  t.deepEqual((await listMachines(c.db)).map(m => m.name), ['quiet', 'watcher'])
  await quiet.stop()
})

test('a node started again under its name replaces its old row, and the old run\'s claims are freed', async (t) => {
  const c = await clusterDatabase()
  t.teardown(c.cleanup)
  const first = await Machine.register(c.db, { name: 'same', address: 'test://1' })
  first.silence()
  const id = await addTask(c.db, 'copy')
  await c.db.query('UPDATE cluster_tasks SET owner = $1 WHERE id = $2', [first.id, id])
  const second = await Machine.register(c.db, { name: 'same', address: 'test://2' })
  t.teardown(async () => { await second.stop() })
  t.deepEqual((await listMachines(c.db)).map(m => [m.id, m.address]), [[second.id, 'test://2']])
  t.deepEqual((await c.db.query('SELECT owner FROM cluster_tasks WHERE id = $1', [id])).rows, [{ owner: null }])
})

test('dead-after, heartbeat and name are checked', async (t) => {
  const c = await clusterDatabase()
  t.teardown(c.cleanup)
  for (const options of [{ deadAfterMs: 0 }, { deadAfterMs: Number.NaN }, { deadAfterMs: 1000, heartbeatMs: 1000 }, { name: '' }]) {
    await t.throwsAsync(Machine.register(c.db, { name: 'x', address: 'test://x', ...options }), { instanceOf: CairnError, code: 'ERR_INVALID_ARGUMENT' })
  }
  t.deepEqual(await listMachines(c.db), [])
})
