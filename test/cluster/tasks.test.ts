/**
 * Tasks claimed safely (Curio's harmonytask model) on a real PostgreSQL: two
 * node processes drain 10,000 tasks without a double claim; a killed node's
 * tasks are finished by another after dead-after; failures are retried with
 * back-off and recorded; a run whose task was taken away is recorded as lost.
 */
import test from 'ava'
import { CairnError } from '../../src/errors.js'
import { Machine } from '../../src/cluster/machines.js'
import { addTask, addTasks, TaskEngine, type TaskContext } from '../../src/cluster/tasks.js'
import { clusterDatabase, startTaskNode, until, type Cluster } from './helpers.js'

interface HistoryRow { task_id: string, machine_name: string, attempt: number, result: string, error: string | null, started_at: Date, ended_at: Date }

async function history (c: Cluster): Promise<HistoryRow[]> {
  return (await c.db.query<HistoryRow>('SELECT task_id, machine_name, attempt, result, error, started_at, ended_at FROM cluster_task_history ORDER BY id')).rows
}

async function open (t: { teardown: (fn: () => Promise<void>) => void }): Promise<Cluster> {
  const c = await clusterDatabase()
  t.teardown(c.cleanup)
  return c
}

test('10,000 no-op tasks drained by two node processes with four workers each: every task run once, no double claim', async (t) => {
  const c = await open(t)
  const nodes = ['a', 'b'].map(name => startTaskNode(c.url, name, { workers: 4, deadAfterMs: 60_000, mode: 'noop' }))
  try {
    await Promise.all(nodes.map(async n => await n.waitFor(/ready \d+/)))
    const ids = await addTasks(c.db, 'noop', Array.from({ length: 10_000 }, (_, i) => ({ i })))
    t.is(new Set(ids).size, 10_000)
    await until(async () => (await c.db.query('SELECT 1 FROM cluster_tasks LIMIT 1')).rowCount === 0, 'every task is done', 240_000)
    for (const n of nodes) n.child.kill('SIGTERM')
    for (const n of nodes) await n.waitFor(/stopped/)
  } finally {
    for (const n of nodes) n.child.kill('SIGKILL')
  }
  const ran = nodes.map(n => [...n.output().matchAll(/^ran (\d+)$/gm)].map(m => Number(m[1])))
  const all = ran.flat()
  t.is(all.length, 10_000, 'as many runs as tasks')
  t.is(new Set(all).size, 10_000, 'no task ran twice')
  t.true((ran[0]?.length ?? 0) > 0 && (ran[1]?.length ?? 0) > 0, `both nodes worked (${ran[0]?.length ?? 0} and ${ran[1]?.length ?? 0})`)
  const rows = await history(c)
  t.is(rows.length, 10_000)
  t.true(rows.every(r => r.result === 'done' && r.attempt === 1))
  t.is(new Set(rows.map(r => r.task_id)).size, 10_000, 'exactly one successful run per task')
  const byNode = (name: string): number => rows.filter(r => r.machine_name === name).length
  t.deepEqual([byNode('a'), byNode('b')], ran.map(r => r.length), 'the history names the node that ran each')
})

test('a killed node\'s claimed tasks are finished by another after dead-after', async (t) => {
  const c = await open(t)
  const deadAfterMs = 1500
  const doomed = startTaskNode(c.url, 'doomed', { workers: 4, deadAfterMs, mode: 'hold' })
  let survivor: { machine: Machine, engine: TaskEngine } | undefined
  try {
    await doomed.waitFor(/ready \d+/)
    const ids = await addTasks(c.db, 'hold', [{ n: 1 }, { n: 2 }, { n: 3 }])
    for (const id of ids) await doomed.waitFor(new RegExp(`holding ${id}\\b`))
    const owners = (await c.db.query<{ owner: string | null }>('SELECT DISTINCT owner FROM cluster_tasks')).rows
    t.is(owners.length, 1)
    t.not(owners[0]?.owner, null, 'the doomed node holds all three')
    doomed.child.kill('SIGKILL')
    await doomed.exited

    const machine = await Machine.register(c.db, { name: 'survivor', address: 'test://survivor', deadAfterMs, heartbeatMs: 200 })
    const engine = new TaskEngine(c.db, machine, { workers: 2, pollMs: 50 })
    survivor = { machine, engine }
    const finished: number[] = []
    engine.registerTaskType('hold', async (task) => { finished.push(task.id) })
    engine.start()
    await until(async () => (await c.db.query('SELECT 1 FROM cluster_tasks LIMIT 1')).rowCount === 0, 'the survivor finished them', 60_000)
    t.deepEqual([...finished].sort((a, b) => a - b), ids)
    t.deepEqual((await c.db.query('SELECT name FROM cluster_machines')).rows, [{ name: 'survivor' }], 'the dead node was removed')
    const rows = await history(c)
    t.deepEqual(rows.map(r => [Number(r.task_id), r.machine_name, r.result, r.attempt]).sort(), ids.map(id => [id, 'survivor', 'done', 2]).sort(),
      'one successful run per task, the second attempt (the dead node\'s run left no record)')
  } finally {
    doomed.child.kill('SIGKILL')
    await survivor?.engine.stop()
    await survivor?.machine.stop()
  }
})

test('a failing task is retried with back-off and every run recorded; one that keeps failing is given up', async (t) => {
  const c = await open(t)
  const machine = await Machine.register(c.db, { name: 'solo', address: 'test://solo' })
  const engine = new TaskEngine(c.db, machine, { workers: 2, pollMs: 20 })
  const backoffMs = 40
  engine.registerTaskType('flaky', async (task) => {
    if (task.attempt < 3) throw new CairnError('ERR_UNREACHABLE', `attempt ${task.attempt} could not reach the other node`)
  }, { backoffMs })
  engine.registerTaskType('doomed', async () => { throw new Error('never works') }, { backoffMs: 1 })
  const flaky = await addTask(c.db, 'flaky', { piece: 'x' })
  const doomed = await addTask(c.db, 'doomed', {}, { maxAttempts: 2 })
  engine.start()
  try {
    await until(async () => (await c.db.query("SELECT 1 FROM cluster_tasks WHERE type = 'flaky'")).rowCount === 0, 'the flaky task is done')
    await until(async () => (await c.db.query('SELECT 1 FROM cluster_tasks WHERE given_up_at IS NOT NULL')).rowCount === 1, 'the doomed task is given up')
  } finally {
    await engine.stop()
    await machine.stop()
  }
  const runs = (await history(c)).filter(r => Number(r.task_id) === flaky)
  t.deepEqual(runs.map(r => [r.attempt, r.result]), [[1, 'failed'], [2, 'failed'], [3, 'done']])
  t.regex(runs[0]?.error ?? '', /^ERR_UNREACHABLE: attempt 1 could not reach/)
  for (let i = 1; i < runs.length; i++) {
    // the retry could not be claimed before retry_at: at least half the back-off, doubled each time
    const waited = (runs[i] as HistoryRow).started_at.getTime() - (runs[i - 1] as HistoryRow).ended_at.getTime()
    t.true(waited >= (backoffMs * 2 ** (i - 1)) / 2 - 1, `run ${i + 1} started ${waited} ms after run ${i} ended`)
  }
  const gaveUp = (await c.db.query<{ attempts: number, last_error: string, owner: string | null }>('SELECT attempts, last_error, owner FROM cluster_tasks WHERE id = $1', [doomed])).rows[0]
  t.deepEqual(gaveUp, { attempts: 2, last_error: 'Error: never works', owner: null })
  t.deepEqual((await history(c)).filter(r => Number(r.task_id) === doomed).map(r => r.result), ['failed', 'failed'])
})

test('a run whose task was taken away sees it before its side effect and is recorded as lost', async (t) => {
  const c = await open(t)
  const machine = await Machine.register(c.db, { name: 'paused', address: 'test://paused' })
  const engine = new TaskEngine(c.db, machine, { workers: 1, pollMs: 20 })
  let release: () => void = () => {}
  const released = new Promise<void>((resolve) => { release = resolve })
  const seen: { before?: boolean, after?: boolean, error?: unknown } = {}
  let started: () => void = () => {}
  const running = new Promise<void>((resolve) => { started = resolve })
  engine.registerTaskType('copy', async (task: TaskContext) => {
    seen.before = await task.stillOwned()
    started()
    await released
    seen.after = await task.stillOwned()
    try { await task.assertOwned() } catch (err) { seen.error = err }
  })
  const id = await addTask(c.db, 'copy', { piece: 'p' })
  engine.start()
  await running
  // another node declares this one dead: its row goes, its claim with it
  await c.db.query('DELETE FROM cluster_machines WHERE id = $1', [machine.id])
  machine.silence()
  // stopping first, so that this engine does not claim the freed task again
  const stopped = engine.stop()
  release()
  await stopped
  t.true(seen.before)
  t.false(seen.after)
  t.true(seen.error instanceof CairnError && seen.error.code === 'ERR_TASK_NOT_OWNED')
  t.deepEqual((await history(c)).map(r => [Number(r.task_id), r.result]), [[id, 'lost']])
  t.deepEqual((await c.db.query('SELECT owner, attempts FROM cluster_tasks WHERE id = $1', [id])).rows, [{ owner: null, attempts: 1 }], 'free for another node')
})

test('stop lets a running task finish within the grace period, and a task still running after it is released, its attempt not counted', async (t) => {
  const c = await open(t)
  const machine = await Machine.register(c.db, { name: 'stopping', address: 'test://stopping' })
  const engine = new TaskEngine(c.db, machine, { workers: 2, pollMs: 20, graceMs: 200 })
  const events: string[] = []
  let claimed = 0
  engine.registerTaskType('quick', async () => {
    claimed++
    await new Promise(resolve => setTimeout(resolve, 50))
    events.push('quick ended')
  })
  engine.registerTaskType('endless', async (task) => {
    claimed++
    await new Promise((resolve) => task.signal.addEventListener('abort', resolve))
    events.push('endless aborted')
    throw task.signal.reason
  })
  const quick = await addTask(c.db, 'quick')
  const endless = await addTask(c.db, 'endless')
  engine.start()
  await until(async () => claimed === 2, 'both are running')
  await engine.stop()
  events.push('stopped')
  await machine.stop()
  t.deepEqual(events, ['quick ended', 'endless aborted', 'stopped'])
  const rows = await history(c)
  t.deepEqual(rows.map(r => [Number(r.task_id), r.result]).sort(), [[quick, 'done'], [endless, 'stopped']].sort())
  t.deepEqual((await c.db.query('SELECT id, owner, attempts FROM cluster_tasks')).rows, [{ id: String(endless), owner: null, attempts: 0 }])
})

test('tasks with a dedupe key are added once while one lives; types and attempts are checked', async (t) => {
  const c = await open(t)
  t.is(typeof await addTask(c.db, 'copy', { piece: 'p' }, { dedupe: 'copy/p' }), 'number')
  t.is(await addTask(c.db, 'copy', { piece: 'p' }, { dedupe: 'copy/p' }), undefined)
  await t.throwsAsync(addTask(c.db, 'Copy Piece'), { instanceOf: CairnError, code: 'ERR_INVALID_ARGUMENT' })
  await t.throwsAsync(addTask(c.db, 'copy', {}, { maxAttempts: 0 }), { instanceOf: CairnError, code: 'ERR_INVALID_ARGUMENT' })
  const machine = await Machine.register(c.db, { name: 'types', address: 'test://types' })
  t.teardown(async () => { await machine.stop() })
  const engine = new TaskEngine(c.db, machine)
  engine.registerTaskType('copy', async () => {})
  t.throws(() => engine.registerTaskType('copy', async () => {}), { instanceOf: TypeError })
  t.throws(() => new TaskEngine(c.db, machine, { workers: 0 }), { instanceOf: CairnError, code: 'ERR_INVALID_ARGUMENT' })
  // a task added inside a transaction commits with it, or not at all
  await t.throwsAsync(c.db.transaction(async (q) => {
    await addTask(q, 'copy', { piece: 'q' }, { dedupe: 'copy/q' })
    throw new Error('rolled back')
  }))
  t.is((await c.db.query("SELECT 1 FROM cluster_tasks WHERE dedupe = 'copy/q'")).rowCount, 0)
})
