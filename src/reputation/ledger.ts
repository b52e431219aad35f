/**
 * Reputation events from the client's ledger (docs/ledger.md): every `proof-passed`,
 * `proof-failed` and `proof-missed` entry names its `provider`, and the audit
 * records how long the challenge took (`ms`). Reading them back makes every
 * score recomputable from signed history alone.
 */
import type { EntryKind, EntryOf, Ledger, LedgerEntry } from '../ledger/interface.js'
import type { AuditOutcome, ModelParams, Reputation, ReputationEvent } from './interface.js'
import { DEFAULT_PARAMS, reputations } from './model.js'

type ResultKind = 'proof-passed' | 'proof-failed' | 'proof-missed'

const OUTCOME: Record<ResultKind, AuditOutcome> = {
  'proof-passed': 'pass',
  'proof-failed': 'fail',
  'proof-missed': 'miss'
}

/** The event an entry is, or undefined for entries that are not audit results. */
export function eventOf (entry: LedgerEntry): ReputationEvent | undefined {
  if (!Object.hasOwn(OUTCOME, entry.kind)) return undefined
  const { kind, fields: { provider, ms } } = entry as EntryOf<ResultKind>
  if (provider === undefined) return undefined
  const outcome = OUTCOME[kind]
  const event: ReputationEvent = { provider, at: entry.at, outcome }
  if (outcome !== 'miss' && ms !== undefined) event.latencyMs = Number(ms)
  return event
}

/** Every audit result in the ledger, oldest first. */
export async function eventsFromLedger (ledger: Pick<Ledger, 'log'>): Promise<ReputationEvent[]> {
  const found: Array<{ seq: number, event: ReputationEvent }> = []
  for (const kind of Object.keys(OUTCOME) as EntryKind[]) {
    for await (const entry of ledger.log({ kind })) {
      const event = eventOf(entry)
      if (event !== undefined) found.push({ seq: entry.seq, event })
    }
  }
  return found.sort((a, b) => a.seq - b.seq).map(f => f.event)
}

export async function reputationsFromLedger (ledger: Pick<Ledger, 'log'>, p: ModelParams = DEFAULT_PARAMS): Promise<Map<string, Reputation>> {
  return reputations(await eventsFromLedger(ledger), p)
}
