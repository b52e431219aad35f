/**
 * Types of the reputation area (README "Reputation, placement and repair"): what a client learns about each
 * provider from its own audits, and the decisions taken from it.
 */

/** One audit result as the reputation model reads it. */
export type AuditOutcome = 'pass' | 'fail' | 'miss' | 'unknown'

export interface ReputationEvent {
  /** the provider's did:key (any stable id in the simulator) */
  provider: string
  /** unix ms */
  at: number
  outcome: AuditOutcome
  /** challenge to answer, when the provider answered */
  latencyMs?: number
}

/** Decayed evidence for a Bernoulli rate: the prior is added only when the rate is read. */
export interface Evidence {
  alpha: number
  beta: number
}

export interface ModelParams {
  /** forgetting factor per `periodMs` of time (Storj's λ) */
  lambda: number
  /** weight of one audit (Storj's w) */
  weight: number
  /**
   * the time over which λ applies once; evidence older by t is weighted
   * λ^(t/periodMs). 0 applies λ once per event, as Storj does with one audit
   * per period.
   */
  periodMs: number
  /** forgetting of the short-memory estimate used for the trend term */
  fastLambda: number
  /** Beta prior added to the evidence (uniform by default) */
  prior: Evidence
  /** lower quantile of the pass rate used as the ranking score */
  quantile: number
  /** EWMA weight of the newest latency sample */
  latencyAlpha: number
  /** how strongly the short-memory estimate is shrunk toward the long one (pseudo-audits) */
  trendShrink: number
}

export interface Reputation {
  provider: string
  /** pass vs any fault (fail or miss): what the score and the prediction read */
  proofs: Evidence
  /** answered with a valid proof vs answered with a wrong one */
  integrity: Evidence
  /** answered (pass or fail) vs not answered (miss, unknown) */
  availability: Evidence
  /** like `proofs`, with short memory (fastLambda): the trend term */
  recent: Evidence
  /** raw counts, never forgotten */
  passes: number
  failures: number
  misses: number
  unknowns: number
  /** faults since the last pass */
  consecutiveFaults: number
  /** EWMA of answer latency, ms */
  latencyMs?: number
  /** unix ms of the first and last event, and the last answer (pass or fail) */
  firstAt?: number
  lastAt?: number
  lastSeen?: number
  /** unix ms of the last pass and of the last fault (fail or miss) */
  lastPassAt?: number
  lastFaultAt?: number
  /**
   * answer latency as means weighted by time (forgotten like the counters,
   * so audits of one instant weigh alike whether applied one by one or as a
   * tally), with short and long memory: their ratio is the latency trend
   */
  latencyFast?: WeightedMean
  latencySlow?: WeightedMean
}

/** Σ weight·x and Σ weight, both decayed with time. */
export interface WeightedMean {
  sum: number
  weight: number
}

/** The raw counts and last answer a summary shows as they are in the reputation. */
export type ReputationCounts = Pick<Reputation, 'passes' | 'failures' | 'misses' | 'unknowns' | 'consecutiveFaults' | 'latencyMs' | 'lastSeen'>

export interface ReputationSummary extends ReputationCounts {
  provider: string
  /** the ranking score: lower `quantile` of Beta(prior + proofs) */
  score: number
  /** predicted probability that the next audit passes (with the trend term) */
  predicted: number
  /** posterior mean of the long-memory estimate alone */
  mean: number
  /** raw passes / audits (no prior, no forgetting); undefined before any audit */
  passRate?: number
}
