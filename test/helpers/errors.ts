/**
 * The one way tests assert a coded error: the `code` a call throws (or a
 * promise rejects with) must be exactly the one expected, and a call that
 * succeeds fails the assertion instead of passing unnoticed.
 */
import type { ExecutionContext } from 'ava'

/** The `code` of what `run` throws; undefined when it returns, `untyped: …` when what it threw has no code. */
export function codeOf (run: () => unknown): string | undefined {
  try {
    run()
  } catch (err) {
    return described(err)
  }
  return undefined
}

/** The `code` `promise` rejects with; undefined when it resolves. */
export async function rejectionCodeOf (promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise
  } catch (err) {
    return described(err)
  }
  return undefined
}

function described (err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : `untyped: ${String((err as Error | null)?.message ?? err)}`
}

/** Asserts that `run` throws an error whose code is `code`; returns that error. */
export function throwsCode (t: ExecutionContext, run: () => unknown, code: string, message?: string): Error | undefined {
  const err = t.throws(run, undefined, message)
  t.is(described(err), code, message)
  return err
}

/** Asserts that `promise` (or what `run` returns) rejects with an error whose code is `code`; returns that error. */
export async function rejectsCode (t: ExecutionContext, promise: Promise<unknown> | (() => Promise<unknown>), code: string, message?: string): Promise<Error | undefined> {
  const err = await t.throwsAsync(typeof promise === 'function' ? promise() : promise, undefined, message)
  t.is(described(err), code, message)
  return err
}
