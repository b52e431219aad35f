/**
 * `cairn deals [--state S] [--provider P]` and `cairn deals show <id>` (README "Client"): the client's deals as its own ledger records them.
 * `cairn deals cancel <id>` cancels a deal not yet active, telling its provider.
 */
import { CairnError } from '../errors.js'
import { isDealState } from '../protocol/state.js'
import { cancelDeal } from '../client/deal.js'
import { LevelLedger } from '../ledger/level.js'
import { Repo, resolveRepoPath } from '../repo/repo.js'
import { withReads } from './reads.js'
import { Output, type GlobalOptions } from './output.js'
import { table } from './providers.js'
import type { DealDetail } from './views.js'

interface DealsOptions extends GlobalOptions {
  state?: string
  provider?: string
}

export default async function deals (args: string[], options: DealsOptions): Promise<void> {
  const out = new Output(options)
  const [verb, id] = args
  if (verb !== undefined && verb !== 'show' && verb !== 'cancel') throw new CairnError('ERR_USAGE', `unknown deals command ${JSON.stringify(verb)}; expected \`cairn deals\`, \`cairn deals show <id>\` or \`cairn deals cancel <id>\``)
  if (options.state !== undefined && !isDealState(options.state)) throw new CairnError('ERR_INVALID_ARGUMENT', `--state must be a deal state (proposed, accepted, active, rejected, failed, …), got ${JSON.stringify(options.state)}`)
  if (verb === 'cancel') {
    if (id === undefined) throw new CairnError('ERR_USAGE', 'expected a deal id: cairn deals cancel <id>')
    await cancel(id, out, resolveRepoPath(options.repo))
    return
  }
  if (verb === 'show' && id === undefined) throw new CairnError('ERR_USAGE', 'expected a deal id: cairn deals show <id>')
  await withReads(resolveRepoPath(options.repo), async (reads) => {
    if (verb === 'show') {
      showDeal(await reads.deal(id as string), out)
      return
    }
    const rows = (await reads.deals()).filter(r =>
      (options.state === undefined || r.state === options.state) &&
      (options.provider === undefined || r.provider === options.provider || r.endpoint === options.provider.replace(/\/+$/, '')))
    out.result(rows, () => {
      if (rows.length === 0) return out.quiet ? '' : 'no deals'
      if (out.quiet) return rows.map(r => r.id).join('\n')
      return table(['deal', 'state', 'provider', 'root', 'proofs', 'next audit'],
        rows.map(r => [r.id, r.state, r.endpoint, r.root, `${r.passed} passed, ${r.failed} failed, ${r.missed} missed`, r.nextAudit ?? '-']))
    })
  })
}

/** Cancels a deal not yet active: a write, so it needs the repo to itself (a running node holds it). */
async function cancel (id: string, out: Output, repoPath: string): Promise<void> {
  const repo = await Repo.open(repoPath)
  try {
    const ledger = await LevelLedger.open(await repo.db(), repo.identity)
    const done = await cancelDeal({ repo, ledger }, id)
    out.result({ ...done, state: 'terminated' }, () => done.told
      ? `deal ${done.id} cancelled; its provider ${done.provider} freed the reservation`
      : `deal ${done.id} cancelled; its provider never received the proposal`)
  } finally {
    await repo.close()
  }
}

function showDeal (d: DealDetail, out: Output): void {
  out.result(d, () => {
    const lines = [
      `deal      ${d.id}`,
      `state     ${d.state}`
    ]
    if (d.provider !== undefined) {
      lines.push(`provider  ${d.provider}`, `endpoint  ${d.endpoint ?? ''}`, `root      ${d.root ?? ''}`, `piece     ${d.pieceCid ?? ''} (${String(d.pieceSize)} bytes padded)`)
    }
    const proposal = d.proposal
    if (proposal !== undefined) {
      lines.push(`price     ${String(proposal.pricePerGiBDay)} per GiB per day`,
        `term      ${String(proposal.start)} to ${String(proposal.end)}`,
        `proving   every ${String(proposal.provingPeriod)} s, ${String(proposal.challenges)} challenges`)
      if (proposal.label !== '' && proposal.label !== undefined) lines.push(`label     ${String(proposal.label)}`)
    }
    lines.push(`proofs    ${d.passed ?? 0} passed, ${d.failed ?? 0} failed, ${d.missed ?? 0} missed`)
    if (d.nextAudit !== undefined) lines.push(`next audit ${d.nextAudit}`)
    if (d.error !== undefined) lines.push(`error     ${String(d.error.code)}: ${String(d.error.message)}`)
    lines.push('ledger')
    for (const e of d.entries) lines.push(`  ${String(e.seq).padStart(5)}  ${e.at}  ${e.kind}`)
    return lines.join('\n')
  })
}
