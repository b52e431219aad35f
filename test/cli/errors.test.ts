import test from 'ava'
import { codes, ExitStatus, exitStatusOf, CairnError, isCairnError } from '../../src/errors.js'

test('every code maps to one of the exit statuses of the README', t => {
  const allowed = new Set(Object.values(ExitStatus))
  for (const code of Object.keys(codes)) {
    t.regex(code, /^ERR_[A-Z0-9_]+$/)
    t.true(allowed.has(exitStatusOf(code) as 1), code)
  }
})

test('an unknown code is an internal error', t => {
  t.is(exitStatusOf('ERR_SOMETHING_NEW'), 1)
})

test('CairnError carries its code and exit status', t => {
  const err = new CairnError('ERR_CAR_TRUNCATED', 'stopped after 10 of 20 bytes')
  t.true(isCairnError(err))
  t.is(err.exitStatus, 3)
  t.deepEqual(err.toJSON(), { code: 'ERR_CAR_TRUNCATED', message: 'stopped after 10 of 20 bytes' })
  t.false(isCairnError(new Error('plain')))
})
