/** The bench's table and the machine's state, as printed and as stored in results.json. */
import { formatSpread, type Machine, type MachineState } from './measure.js'
import type { PairResult } from './pairs.js'

/** A section's run: the machine's state before and after it. */
export interface SectionRecord { name: string, seconds: number, before: MachineState, after: MachineState }

const load = (s: MachineState): string => s.loadAverage.map(n => n.toFixed(2)).join(' ')

export function machineLines (machine: Machine, sections: SectionRecord[]): string[] {
  const lines = [`machine: ${machine.cpu}, ${machine.cpus} CPUs, Node ${machine.node}, Linux ${machine.kernel}, ${machine.memoryMiB} MiB memory`]
  for (const s of sections) {
    lines.push(`  ${s.name.padEnd(26)} ${s.seconds.toFixed(0).padStart(5)} s   load average ${load(s.before)} → ${load(s.after)}   free memory ${s.before.freeMemoryMiB} → ${s.after.freeMemoryMiB} MiB (available ${s.before.availableMemoryMiB ?? '?'} → ${s.after.availableMemoryMiB ?? '?'})`)
  }
  return lines
}

const rss = (s: PairResult['cairn'] | undefined): string => s?.peakRssMiB == null ? '?' : formatSpread(s.peakRssMiB, 0)

/** A side's own figures (the provider's event loop during an upload, …), as the table shows them. */
function notesOf (r: PairResult, side: PairResult['cairn'] | undefined): string {
  if (side?.notes === undefined) return ''
  return Object.entries(side.notes).map(([name, s]) => `${r.noteLabels?.[name] ?? name} ${formatSpread(s)}`).join('; ')
}

/** One row per comparison: medians with (min–max) over the pairs, the median of the pair ratios, and the sides' own figures. */
export function comparisonTable (results: PairResult[]): string[] {
  const rows = [
    '| measure | cairn | MiB/s | peer | MiB/s | cairn ÷ peer | peak RSS MiB, cairn / peer | pairs | beside |',
    '|---|---|---:|---|---:|---:|---:|---:|---|'
  ]
  for (const r of results) {
    const ratio = r.ratio === undefined ? '' : formatSpread(r.ratio, 2, '×')
    const beside = [notesOf(r, r.cairn), notesOf(r, r.peer)].filter(n => n !== '').join(' / ')
    rows.push(`| ${r.name} | ${r.cairn.tool} | ${formatSpread(r.cairn.mibPerSec)} | ${r.peer?.tool ?? '—'} | ${r.peer === undefined ? '' : formatSpread(r.peer.mibPerSec)} | ${ratio} | ${rss(r.cairn)} / ${r.peer === undefined ? '—' : rss(r.peer)} | ${r.pairs} | ${beside} |`)
  }
  return rows
}
