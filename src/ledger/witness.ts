/**
 * Checking a counterparty's ledger against the heads this node witnessed
 * (docs/ledger.md "Witnessed heads"). Every signed message a client and a
 * provider exchange carries its sender's ledger head — seq and CID of its
 * newest entry — and the receiver records it in the entry that holds the
 * message. Given the counterparty's `ledger export`, every such head must
 * still be in its chain at the same seq with the same CID: a ledger cut short
 * or rewritten (even re-signed throughout with the node's own key) after a
 * head was seen no longer contains it.
 *
 * It cannot catch a change after the last head this node saw, nor a node
 * that kept two chains from the start and showed each party its own.
 */
import { CairnError } from '../errors.js'
import type { Ledger } from './interface.js'
import { verifyExport } from './verify-export.js'

export interface WitnessReport {
  /** the export's signer: the counterparty checked */
  counterparty: string
  /** entries in the export */
  entries: number
  /** heads of the counterparty this ledger witnessed, all found */
  checked: number
  /** the newest of them, if any */
  newest?: { seq: number, cid: string, via: string }
}

/** Whose heads were witnessed and which: a ledger, or its views through the node that holds it. */
export type WitnessSource = Pick<Ledger, 'did' | 'witnessed'>

/**
 * Verifies the export on its own (links, CIDs, signatures), then checks that
 * it holds every head of its signer this ledger witnessed. Throws
 * ERR_LEDGER_BROKEN for an export that does not verify, ERR_LEDGER_REWRITTEN
 * naming the first witnessed head it lacks.
 */
export async function checkWitnessed (ledger: WitnessSource, lines: Iterable<string> | AsyncIterable<string>): Promise<WitnessReport> {
  const chain = new Map<number, string>()
  const report = await verifyExport(lines, undefined, { onEntry: (seq, cid) => { chain.set(seq, cid.toString()) } })
  const counterparty = report.signer
  if (counterparty === null) throw new CairnError('ERR_LEDGER_BROKEN', 'the export holds no entries: there is nothing to check the witnessed heads against')
  if (counterparty === ledger.did) throw new CairnError('ERR_INVALID_ARGUMENT', 'the export is of this node\'s own ledger; --against takes the counterparty\'s export')
  let checked = 0
  let newest: WitnessReport['newest']
  for await (const w of ledger.witnessed(counterparty)) {
    const found = chain.get(w.seq)
    const seen = `its entry ${w.seq} (${w.cid.toString()}), signed into ${w.via} and recorded in this ledger's entry ${w.entry}`
    if (found === undefined) {
      throw new CairnError('ERR_LEDGER_REWRITTEN', `the ledger of ${counterparty} was cut short: its export ends at entry ${report.entries}, but this node saw ${seen}`, { details: { counterparty, seq: w.seq, cid: w.cid.toString(), entry: w.entry } })
    }
    if (found !== w.cid.toString()) {
      throw new CairnError('ERR_LEDGER_REWRITTEN', `the ledger of ${counterparty} was rewritten: its entry ${w.seq} is now ${found}, but this node saw ${seen}`, { details: { counterparty, seq: w.seq, cid: w.cid.toString(), found, entry: w.entry } })
    }
    checked++
    newest = { seq: w.seq, cid: w.cid.toString(), via: w.via }
  }
  return { counterparty, entries: report.entries, checked, newest }
}
