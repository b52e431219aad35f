/**
 * The deal state machine (docs/protocol.md): proposed → accepted → transferring →
 * active → (expired | terminated), plus rejected and failed. Each side keeps
 * its own view. A provider records a deal first as accepted or rejected; an
 * aborted upload returns a deal to accepted so the client may retry; a
 * provider-side upload that verifies and stores in one step goes straight from
 * accepted to active. Three consecutive faults fail an active deal (docs/ledger.md).
 * A deal that is accepted but not uploaded before its upload deadline expires
 * (its reservation is freed), and a client may cancel a deal before it is
 * active (terminated), even one whose proposal may never have arrived.
 */
import type { DealState } from './interface.js'

export type { DealState }

export const DEAL_STATES: readonly DealState[] = ['proposed', 'accepted', 'transferring', 'active', 'expired', 'terminated', 'rejected', 'failed']

/** States a deal may be first recorded in. */
export const INITIAL_STATES: readonly DealState[] = ['proposed', 'accepted', 'rejected']

export const TRANSITIONS: Readonly<Record<DealState, readonly DealState[]>> = {
  proposed: ['accepted', 'rejected', 'failed', 'terminated'],
  accepted: ['transferring', 'active', 'expired', 'failed', 'terminated'],
  transferring: ['active', 'accepted', 'expired', 'failed', 'terminated'],
  active: ['expired', 'terminated', 'failed'],
  expired: [],
  terminated: [],
  rejected: [],
  failed: []
}

export function isDealState (value: unknown): value is DealState {
  return typeof value === 'string' && (DEAL_STATES as readonly string[]).includes(value)
}

export function isTerminal (state: DealState): boolean {
  return TRANSITIONS[state].length === 0
}

/** Whether a deal in `from` (undefined: not yet known) may move to `to`. */
export function canTransition (from: DealState | undefined, to: DealState): boolean {
  return from === undefined ? INITIAL_STATES.includes(to) : TRANSITIONS[from].includes(to)
}

/** The next state; an illegal transition is a programmer error (TypeError). */
export function transition (from: DealState | undefined, to: DealState): DealState {
  if (!canTransition(from, to)) {
    throw new TypeError(`illegal deal transition ${from ?? '(new)'} → ${to}; allowed: ${(from === undefined ? INITIAL_STATES : TRANSITIONS[from]).join(', ') || 'none (terminal)'}`)
  }
  return to
}
