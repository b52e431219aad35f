/**
 * `cairn add --encrypt` beside plaintext `cairn add` on the same input, in
 * the same run (target: ≥ 85 % of plaintext throughput, peak RSS flat in the
 * input size). Runs alternate — plaintext, encrypted, plaintext, … — and the
 * ratio is the median of the pair ratios, with its range, since single runs
 * on a shared machine disagree by tens of percent.
 */
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { measure, type Measure } from './measure.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = join(ROOT, 'bin', 'cairn.js')

export interface EncryptBench {
  label: string
  pairs: number
  /** encrypted ÷ plaintext throughput, per pair */
  ratios: number[]
  median: number
  min: number
  max: number
  plainMiBps: number[]
  encryptedMiBps: number[]
  plainPeakRssMiB: Array<number | null>
  encryptedPeakRssMiB: Array<number | null>
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Alternating runs of `add` and `add --encrypt` on `input`, each in a fresh repo. */
export async function benchEncrypt (work: string, input: string, size: number, label: string, pairs = 3): Promise<{ rows: Measure[], summary: EncryptBench }> {
  const run = async (encrypt: boolean, i: number): Promise<Measure> => {
    const repo = join(work, `encrypt-bench-${encrypt ? 'enc' : 'plain'}-${i}`)
    try {
      await measure('init', 'cairn', 0, process.execPath, [BIN, '--repo', repo, 'init'])
      return await measure(`add --encrypt ${label}`, encrypt ? 'cairn add --encrypt' : 'cairn add (plaintext, same run)', size, process.execPath, [BIN, '--repo', repo, '--json', 'add', ...(encrypt ? ['--encrypt'] : []), input])
    } finally {
      await rm(repo, { recursive: true, force: true })
    }
  }
  const plain: Measure[] = []
  const encrypted: Measure[] = []
  for (let i = 0; i < pairs; i++) {
    plain.push(await run(false, i))
    encrypted.push(await run(true, i))
    process.stderr.write(`  add --encrypt ${label} pair ${i + 1}: ${encrypted[i].mibPerSec.toFixed(1)} vs ${plain[i].mibPerSec.toFixed(1)} MiB/s plaintext, ${encrypted[i].peakRssMiB ?? '?'} vs ${plain[i].peakRssMiB ?? '?'} MiB RSS\n`)
  }
  const ratios = encrypted.map((e, i) => e.mibPerSec / plain[i].mibPerSec)
  // the pair with the median ratio, encrypted first: the table's ratio column is then that pair's encrypted ÷ plaintext
  const middle = ratios.map((r, i) => ({ r, i })).sort((a, b) => a.r - b.r)[Math.floor(pairs / 2)].i
  return {
    rows: [encrypted[middle], plain[middle]],
    summary: {
      label,
      pairs,
      ratios,
      median: median(ratios),
      min: Math.min(...ratios),
      max: Math.max(...ratios),
      plainMiBps: plain.map(m => m.mibPerSec),
      encryptedMiBps: encrypted.map(m => m.mibPerSec),
      plainPeakRssMiB: plain.map(m => m.peakRssMiB),
      encryptedPeakRssMiB: encrypted.map(m => m.peakRssMiB)
    }
  }
}
