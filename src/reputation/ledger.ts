/**
 * Reputation events from the client's ledger (docs/ledger.md): every `proof-passed`,
 * `proof-failed`, `proof-missed` and `data-set-audited` entry names its `provider`, and the audit
 * records how long the challenge took (`ms`). Reading them back makes every
 * score recomputable from signed history alone.
 */
import type { EntryKind, Ledger, LedgerEntry } from '../ledger/interface.js'
import type { AuditOutcome, ModelParams, Reputation, ReputationEvent } from './interface.js'
import { DEFAULT_PARAMS, reputations } from './model.js'

type ResultKind = 'proof-passed' | 'proof-failed' | 'proof-missed'

const OUTCOME: Record<ResultKind, AuditOutcome> = {
  'proof-passed': 'pass',
  'proof-failed': 'fail',
  'proof-missed': 'miss'
}

/** A data set's audit (src/client/data-set-watch.ts) counts as a deal audit does; an ended data set counts for nothing. */
const DATA_SET_OUTCOME: Record<string, AuditOutcome> = { passed: 'pass', failed: 'fail', missed: 'miss' }

/** The event an entry is, or undefined for entries that are not audit results. */
export function eventOf (entry: LedgerEntry): ReputationEvent | undefined {
  const outcome = entry.kind === 'data-set-audited'
    ? DATA_SET_OUTCOME[String(entry.fields.outcome)]
    : Object.hasOwn(OUTCOME, entry.kind) ? OUTCOME[entry.kind as ResultKind] : undefined
  const { provider, ms } = entry.fields as { provider?: unknown, ms?: unknown }
  if (outcome === undefined || typeof provider !== 'string') return undefined
  const event: ReputationEvent = { provider, at: entry.at, outcome }
  if (outcome !== 'miss' && (typeof ms === 'number' || typeof ms === 'bigint')) event.latencyMs = Number(ms)
  return event
}

/** Every audit result in the ledger, oldest first. */
export async function eventsFromLedger (ledger: Pick<Ledger, 'log'>): Promise<ReputationEvent[]> {
  const found: Array<{ seq: number, event: ReputationEvent }> = []
  for (const kind of [...Object.keys(OUTCOME), 'data-set-audited'] as EntryKind[]) {
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
