import test from 'ava'
import { performance } from 'node:perf_hooks'
import { TimeSlicer } from '../src/slice.js'

function spin (ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) { /* busy: the kind of work that holds the event loop */ }
}

test('due only once the budget is used; pause starts a new slice', async t => {
  const slicer = new TimeSlicer(3)
  t.false(slicer.due)
  spin(4)
  t.true(slicer.due)
  await slicer.pause()
  t.false(slicer.due)
})

test('a sliced synchronous loop lets a timer run before it finishes', async t => {
  const slicer = new TimeSlicer(2)
  let done = 0
  let doneWhenTimerRan = -1
  setTimeout(() => { doneWhenTimerRan = done }, 0)
  for (let i = 0; i < 20; i++) {
    spin(1)
    done++
    if (slicer.due) await slicer.pause()
  }
  // unsliced, the timer could only run after all 20 items (20 ms of work without a turn of the loop)
  t.true(doneWhenTimerRan >= 1 && doneWhenTimerRan < 20, `the timer ran after ${doneWhenTimerRan} items`)
})
