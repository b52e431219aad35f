import test from 'ava'
import { canTransition, DEAL_STATES, isTerminal, transition, TRANSITIONS } from '../../src/protocol/state.js'

test('the happy path of docs/protocol.md "Deal lifecycle" is legal', t => {
  let s = transition(undefined, 'proposed')
  for (const next of ['accepted', 'transferring', 'active', 'expired'] as const) s = transition(s, next)
  t.is(s, 'expired')
  t.true(isTerminal(s))
})

test('terminal states have no way out and illegal transitions are programmer errors', t => {
  for (const state of ['expired', 'terminated', 'rejected', 'failed'] as const) {
    t.true(isTerminal(state))
    for (const to of DEAL_STATES) t.false(canTransition(state, to))
  }
  t.throws(() => transition('proposed', 'active'), { instanceOf: TypeError })
  t.throws(() => transition(undefined, 'active'), { instanceOf: TypeError })
  t.throws(() => transition('active', 'accepted'), { instanceOf: TypeError })
})

test('every state can reach a terminal state', t => {
  for (const state of DEAL_STATES) {
    const seen = new Set([state])
    const queue = [state]
    while (queue.length > 0) for (const next of TRANSITIONS[queue.shift()!]) if (!seen.has(next)) { seen.add(next); queue.push(next) }
    t.true([...seen].some(isTerminal), state)
  }
})
