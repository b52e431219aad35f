/**
 * Declared comparisons and the one place they are run. A comparison names a
 * cairn command, a peer command, the input and what is measured; it runs as
 * alternating pairs — cairn, peer, cairn, peer, … — so that a change in the
 * machine's load hits both sides alike, and every figure is reported as the
 * median of its runs with the lowest and highest beside it. The ratio is the
 * median of the per-pair ratios (each pair ran back to back), not the ratio of
 * two medians. On the shared 2-core machines single runs disagree by ±30 %.
 */
import { execFile } from 'node:child_process'
import { measure, spread, type Measure, type MeasureOptions, type Spread } from './measure.js'

/** One side of a comparison: a command run in its own process. */
export interface Command {
  /** how the table names it: 'cairn add', 'ipfs-car pack --no-wrap' */
  tool: string
  /** the program and its arguments (a function when they are known only at run time, e.g. a provider's URL) */
  cmd: string
  args: string[] | (() => string[])
  /** the bytes its MiB/s counts */
  bytes: number
  env?: Record<string, string>
  stdout?: MeasureOptions['stdout']
  /** unmeasured, before each run: a fresh repo, a provider started, … */
  before?: () => Promise<void>
  /**
   * Unmeasured, after each run: checks the run's output (throwing stops the
   * bench: a wrong answer is no figure), removes what it wrote, and may return
   * figures of its own (the provider's event loop during an upload, …).
   */
  after?: (run: Measure) => Promise<Record<string, number> | undefined | void>
}

/** A comparison as bench sections declare it. */
export interface Pair {
  /** the row: 'add 1 GiB' */
  name: string
  /** what the figures are: 'wall time of the whole command; MiB/s of the input file' */
  what: string
  /** what both sides were given: '1 GiB of AES-CTR bytes, one file' */
  input: string
  cairn: Command
  /** absent: cairn alone, repeated as often as a pair would be (e.g. peak RSS at 2 GiB) */
  peer?: Command
  /** this comparison's own number of pairs (a flag of its own, e.g. --encrypt-pairs); else the bench's --pairs */
  pairs?: number
  /** how the table labels the figures the commands' `after` hooks return: { providerEventLoopDelayMaxMs: 'event-loop max, ms' } */
  noteLabels?: Record<string, string>
}

export interface RunFigures { seconds: number, mibPerSec: number, peakRssMiB: number | null, notes?: Record<string, number> }

export interface Side {
  tool: string
  bytes: number
  runs: RunFigures[]
  mibPerSec: Spread
  seconds: Spread
  peakRssMiB: Spread | null
  /** each note's spread over the runs */
  notes?: Record<string, Spread>
  /** the first run's stdout (cut at 2,000 characters), for the record */
  output: string
}

export interface PairResult {
  name: string
  what: string
  input: string
  /** pairs run (or runs, for cairn alone) */
  pairs: number
  cairn: Side
  peer?: Side
  noteLabels?: Record<string, string>
  /** cairn's MiB/s ÷ the peer's, per pair, and their spread */
  ratios?: number[]
  ratio?: Spread
}

/**
 * Flushes the page cache's dirty pages (`sync`), unmeasured, before each run:
 * otherwise the writeback of what came before (the last section's uploads, a
 * run's output) lands on whichever run follows — always cairn's, the first of
 * each pair — as kernel CPU and as throttled writes.
 */
async function settle (): Promise<void> {
  await new Promise<void>(resolve => execFile('sync', () => resolve()))
}

async function runOnce (name: string, command: Command): Promise<{ run: Measure, notes?: Record<string, number> }> {
  await command.before?.()
  await settle()
  const args = typeof command.args === 'function' ? command.args() : command.args
  const run = await measure(name, command.tool, command.bytes, command.cmd, args, { env: command.env, stdout: command.stdout })
  const notes = await command.after?.(run) ?? undefined
  return { run, notes }
}

function sideOf (command: Command, runs: Array<{ run: Measure, notes?: Record<string, number> }>): Side {
  const figures: RunFigures[] = runs.map(({ run, notes }) => ({
    seconds: run.seconds,
    mibPerSec: run.mibPerSec,
    peakRssMiB: run.peakRssMiB,
    ...(notes === undefined ? {} : { notes })
  }))
  const rss = figures.map(f => f.peakRssMiB).filter((r): r is number => r !== null)
  const noteNames = [...new Set(figures.flatMap(f => Object.keys(f.notes ?? {})))]
  return {
    tool: command.tool,
    bytes: command.bytes,
    runs: figures,
    mibPerSec: spread(figures.map(f => f.mibPerSec)),
    seconds: spread(figures.map(f => f.seconds)),
    peakRssMiB: rss.length === figures.length ? spread(rss) : null,
    ...(noteNames.length === 0
      ? {}
      : { notes: Object.fromEntries(noteNames.map(n => [n, spread(figures.map(f => f.notes?.[n]).filter((v): v is number => v !== undefined && Number.isFinite(v)))])) }),
    output: runs[0]?.run.output.slice(0, 2000) ?? ''
  }
}

/**
 * Runs `pairs` alternating pairs (cairn first in each) and summarises both
 * sides and their ratio. A comparison with a peer starts with one unmeasured
 * run of each side (its checks still run): the first measured run would
 * otherwise meet a cold server and whatever the section before left behind
 * (memory the kernel has given back, files being written out), and it is
 * always cairn's.
 */
export async function runPair (pair: Pair, pairs: number, log: (line: string) => void = () => {}): Promise<PairResult> {
  if (!Number.isSafeInteger(pairs) || pairs < 1) throw new RangeError(`pairs must be a whole number ≥ 1, got ${pairs}`)
  const ours: Array<{ run: Measure, notes?: Record<string, number> }> = []
  const theirs: Array<{ run: Measure, notes?: Record<string, number> }> = []
  if (pair.peer !== undefined) {
    const a = await runOnce(pair.name, pair.cairn)
    const b = await runOnce(pair.name, pair.peer)
    log(`  ${pair.name.padEnd(24)} warm-up  ${pair.cairn.tool} ${a.run.mibPerSec.toFixed(1)} MiB/s · ${pair.peer.tool} ${b.run.mibPerSec.toFixed(1)} MiB/s (not counted)`)
  }
  for (let i = 0; i < pairs; i++) {
    const a = await runOnce(pair.name, pair.cairn)
    ours.push(a)
    let line = `  ${pair.name.padEnd(24)} ${String(i + 1).padStart(2)}/${pairs}  ${pair.cairn.tool} ${a.run.mibPerSec.toFixed(1)} MiB/s`
    if (pair.peer !== undefined) {
      const b = await runOnce(pair.name, pair.peer)
      theirs.push(b)
      line += ` · ${pair.peer.tool} ${b.run.mibPerSec.toFixed(1)} MiB/s · ${(a.run.mibPerSec / b.run.mibPerSec).toFixed(2)}×`
    }
    log(line)
  }
  const result: PairResult = { name: pair.name, what: pair.what, input: pair.input, pairs, cairn: sideOf(pair.cairn, ours), ...(pair.noteLabels === undefined ? {} : { noteLabels: pair.noteLabels }) }
  if (pair.peer !== undefined) {
    result.peer = sideOf(pair.peer, theirs)
    result.ratios = ours.map((a, i) => a.run.mibPerSec / theirs[i].run.mibPerSec)
    result.ratio = spread(result.ratios)
  }
  return result
}

/** An `after` check shared by several commands: every run must print the same answer (piece CIDs, roots). */
export function sameAnswer (label: string, answerOf: (run: Measure) => string): (run: Measure) => Promise<undefined> {
  let first: { tool: string, answer: string } | undefined
  return async (run) => {
    const answer = answerOf(run)
    first ??= { tool: run.tool, answer }
    if (answer !== first.answer) throw new Error(`${label}: ${run.tool} answered ${answer}, ${first.tool} answered ${first.answer}`)
    return undefined
  }
}
