/**
 * One node of the two-process chain test (test/state/chain-processes.test.ts):
 * appends `count` entries to the shared chain through its own pool, many at
 * once, in groups, then prints "done". It prints "ready" once connected and
 * starts when a line arrives on stdin, so that both nodes append at once.
 *
 *   node dist/test/state/chain-node.js <database url> <space name> <node name> <count>
 */
import { Db } from '../../src/postgres/db.js'
import { PgStore } from '../../src/state/pg.js'
import { namedLock, testSpace } from '../../src/state/spaces.js'
import { ChainAppender } from './chain.js'

const [url, spaceName, node, count] = process.argv.slice(2) as [string, string, string, string]
const db = await Db.connect({ url, max: 4 })
try {
  process.stdout.write('ready\n')
  await new Promise(resolve => process.stdin.once('data', resolve))
  process.stdin.pause()
  const appender = new ChainAppender(new PgStore(db), testSpace(spaceName), namedLock(`chain-${spaceName}`), 8)
  const appends: Array<Promise<number>> = []
  for (let i = 0; i < Number(count); i++) {
    appends.push(appender.append(`${node}-${i}`))
    // arrive over time, as deal events do, so that the two nodes' transactions interleave
    if (i % 16 === 15) await new Promise(resolve => setImmediate(resolve))
  }
  await Promise.all(appends)
  process.stdout.write('done\n')
} finally {
  await db.close()
}
