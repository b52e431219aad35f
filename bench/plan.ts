/**
 * What a bench section declares (bench/README.md says how to add one), and the
 * programs the sections run. bench/run.ts holds the list of sections.
 */
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Pair, PairResult } from './pairs.js'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const BIN = join(ROOT, 'bin', 'cairn.js')
export const PEERS = join(ROOT, 'dist', 'bench', 'peers.js')
export const RAW_HTTP = join(ROOT, 'dist', 'bench', 'raw-http.js')
export const IPFS_CAR = join(ROOT, 'node_modules', 'ipfs-car', 'bin.js')

/** What comparisons on one input size are given. */
export interface SizeContext {
  /** a scratch directory, removed after the run */
  work: string
  /** the generated input file (AES-CTR bytes) */
  input: string
  size: number
  /** '256 MiB', '1 GiB' */
  label: string
  skipSlowPeers: boolean
  /** a flag's value: opt('--encrypt-pairs') */
  opt: (name: string) => string | undefined
}

/**
 * Comparisons run on every input size (`--sizes`). `pairs` declares them; the
 * bench runs each as alternating pairs, then calls `close` (servers stopped,
 * repos removed).
 */
export interface SizeGroup {
  name: string
  /** the flag that leaves the group out: '--no-transfer' */
  skip: string
  pairs: (ctx: SizeContext) => Promise<{ pairs: Pair[], close?: () => Promise<void> }>
}

export interface SectionContext {
  work: string
  opt: (name: string) => string | undefined
  has: (flag: string) => boolean
  /** pairs per comparison (`--pairs`) */
  pairs: number
  /** a progress line on stderr */
  log: (line: string) => void
  /** runs a declared comparison as alternating pairs; its result joins the table */
  compare: (pair: Pair) => Promise<PairResult>
}

/**
 * A bench of its own (ledger, proofs, /piece under load, …): run once per
 * bench, between load-average readings. `run` returns what goes into
 * results.json under `name` and the lines printed under the table.
 */
export interface Section {
  name: string
  /** the flag that leaves it out ('--no-ledger'), or, for sections off by default, the one that asks for it */
  flag: string
  /** off unless its flag is given */
  optIn?: boolean
  run: (ctx: SectionContext) => Promise<{ result: unknown, lines: string[] } | undefined>
}
