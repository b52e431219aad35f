/**
 * Fits the fault predictor's weights (src/reputation/predictor.ts) on the
 * training seeds, and prints them to be pasted into WEIGHTS.
 *
 *   node dist/sim/main.js --fit [--seeds 6]   (training seeds 101, 102, …)
 *
 * The training audits are those of random placement with repair after
 * failure: no prediction decides which replicas stay, so the audits a
 * predictor is fitted on are not chosen by a predictor. Passes are kept with
 * probability ¼ (by a hash of the seed and the audit) and weighted 4, which
 * keeps the data small without biasing the fit.
 */
import { DEFAULT_PARAMS } from '../src/reputation/model.js'
import { FAIL_FEATURES, features, MISS_FEATURES, type FeatureName, type PredictorWeights } from '../src/reputation/predictor.js'
import { fitLogistic, type Dataset } from './logistic.js'
import { hashUnit } from './random.js'
import { DEFAULT_CONFIG, simulate, STRATEGIES, type SimConfig } from './simulate.js'

export const TRAINING_SEEDS = Array.from({ length: 6 }, (_, i) => 101 + i)
/** the strategy whose audits train the predictor */
export const TRAINING_STRATEGY = STRATEGIES[1]

class Rows {
  x: number[] = []
  y: number[] = []
  weight: number[] = []
  constructor (readonly names: readonly FeatureName[]) {}
  push (f: Record<FeatureName, number>, y: number, weight: number): void {
    for (const n of this.names) this.x.push(f[n])
    this.y.push(y)
    this.weight.push(weight)
  }

  dataset (): Dataset {
    return { x: Float64Array.from(this.x), y: Float64Array.from(this.y), weight: Float64Array.from(this.weight), width: this.names.length, rows: this.y.length }
  }
}

export function fitPredictor (seeds: number[], config: Partial<Omit<SimConfig, 'seed'>> = {}): PredictorWeights {
  const miss = new Rows(MISS_FEATURES)
  const fail = new Rows(FAIL_FEATURES)
  for (const seed of seeds) {
    let n = 0
    simulate({ ...DEFAULT_CONFIG, ...config, seed }, TRAINING_STRATEGY, {
      onAudit: (o) => {
        n++
        const bad = o.outcome !== 'pass'
        if (!bad && hashUnit(seed, 77, n) >= 0.25) return
        const weight = bad ? 1 : 4
        const f = features(o.reputation, DEFAULT_PARAMS, o.at, o.deal)
        miss.push(f, o.outcome === 'miss' ? 1 : 0, weight)
        if (o.outcome !== 'miss') fail.push(f, o.outcome === 'fail' ? 1 : 0, weight)
      }
    })
  }
  const named = (names: readonly FeatureName[], w: number[]): Partial<Record<FeatureName, number>> => Object.fromEntries(names.map((n, i) => [n, Number(w[i].toPrecision(4))]))
  return { miss: named(MISS_FEATURES, fitLogistic(miss.dataset())), fail: named(FAIL_FEATURES, fitLogistic(fail.dataset())) }
}
