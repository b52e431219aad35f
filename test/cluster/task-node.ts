/**
 * One node process for the task tests (test/cluster/tasks.test.ts): registers
 * as a machine, runs a task engine, prints one line per event, and stops
 * cleanly on SIGTERM ("stopped").
 *
 *   node dist/test/cluster/task-node.js <database url> <name> <workers> <dead-after ms> <mode>
 *
 * mode noop: tasks of type "noop" end at once; each claim prints "ran <id>".
 * mode hold: tasks of type "hold" print "holding <id>" and never end (until the process is killed).
 */
import { Db } from '../../src/postgres/db.js'
import { Machine } from '../../src/cluster/machines.js'
import { TaskEngine } from '../../src/cluster/tasks.js'

const [url, name, workers, deadAfter, mode] = process.argv.slice(2) as [string, string, string, string, string]
const db = await Db.connect({ url })
const machine = await Machine.register(db, { name, address: `test://${name}`, deadAfterMs: Number(deadAfter), heartbeatMs: Number(deadAfter) / 5 })
const engine = new TaskEngine(db, machine, { workers: Number(workers), pollMs: 20, graceMs: 1000 })
let out: string[] = []
const flush = (): void => { if (out.length > 0) { process.stdout.write(out.join('')); out = [] } }
const flusher = setInterval(flush, 50)
if (mode === 'noop') {
  engine.registerTaskType('noop', async (task) => { out.push(`ran ${task.id}\n`) })
} else {
  engine.registerTaskType('hold', async (task) => {
    out.push(`holding ${task.id}\n`)
    flush()
    await new Promise(() => {})
  })
}
engine.start()
process.stdout.write(`ready ${machine.id}\n`)
process.once('SIGTERM', () => {
  void (async () => {
    await engine.stop()
    await machine.stop()
    await db.close()
    clearInterval(flusher)
    flush()
    process.stdout.write('stopped\n')
  })()
})
