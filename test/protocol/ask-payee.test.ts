/**
 * The ask's optional `payee` (docs/pdp.md): the Ethereum address PDP clients
 * name in a signed CreateDataSet, announced by providers that set one.
 */
import test from 'ava'
import * as dagJSON from '@ipld/dag-json'
import { askFrom, signAsk, verifyAsk } from '../../src/protocol/ask.js'
import type { Signed } from '../../src/protocol/signing.js'
import { askFor, newSigner } from './fixtures.js'
import { throwsCode } from '../helpers/errors.js'

const provider = newSigner()
const payee = '0xabcdef0123456789abcdef0123456789abcdef01'

test('an ask with a payee is signed, survives DAG-JSON and verifies with it', t => {
  const signed = signAsk(provider, askFor(provider, { payee }))
  const back = verifyAsk(dagJSON.decode(dagJSON.encode(signed)) as Signed<unknown>)
  t.is(back.payload.payee, payee)
})

test('an ask without a payee carries no payee field', t => {
  const signed = signAsk(provider, askFor(provider))
  t.false('payee' in signed.payload)
})

test('a payee that is not a lower-case 20-byte hex address is ERR_INVALID_MESSAGE', t => {
  for (const bad of ['0x123', 'abcdef0123456789abcdef0123456789abcdef01', '0xABCDEF0123456789ABCDEF0123456789ABCDEF01', 42]) {
    throwsCode(t, () => askFrom({ ...askFor(provider), payee: bad }), 'ERR_INVALID_MESSAGE', String(bad))
  }
})

test('a signed payee cannot be swapped', t => {
  const signed = signAsk(provider, askFor(provider, { payee }))
  const swapped = { ...signed, payload: { ...signed.payload, payee: '0x' + '22'.repeat(20) } }
  throwsCode(t, () => verifyAsk(swapped as Signed<unknown>), 'ERR_BAD_SIGNATURE')
})
