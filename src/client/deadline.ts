/**
 * `--deadline auto` (docs/encryption.md "Deadlines"): a proof must arrive
 * about as soon as an honest provider, reading the challenged leaves from its
 * own disk, could send it — so a provider that keeps nothing and fetches the
 * piece from elsewhere when challenged (another provider's `/piece`, a cold
 * archive) runs out of time.
 *
 *   deadline = 2 × RTT + FACTOR × proving(padded size, challenges) + SLACK
 *
 * - RTT: the fastest of a few `GET /v1/ask` round trips to the provider just
 *   before the challenge (a fresh connection costs one more round trip, hence
 *   two), capped at MAX_RTT_MS so that a provider cannot buy time by answering
 *   its asks slowly.
 * - proving: what an honest cairn provider needs with its layer cache
 *   (src/provider/proofs.ts), modelled from bench/proofs.ts on a 2-core
 *   machine: 16 challenges on a 1 GiB piece (2 GiB padded) take 12–17 ms warm
 *   and 20–21 ms cold (cache and piece evicted from the page cache). A
 *   challenge reads one 32 KiB subtree of the piece (level-10 cache) and
 *   hashes it; a cold proof first loads the cache (1 MiB per padded GiB) and
 *   checks it against the piece CID, which grows with the piece.
 * - FACTOR and SLACK absorb a loaded machine, garbage collection and jitter.
 *
 * Fetching the piece instead costs its whole size over the network plus the
 * CommP of it (bench: about 400 MiB/s on one core with the native addon), so
 * from 1 GiB up the gap is seconds against a deadline of about a second.
 */
import { ProviderClient } from './provider-client.js'

export interface ProvingModel {
  /** fixed cost of a proof: signing, the request itself */
  baseMs: number
  /** each challenged leaf: one subtree read and hashed, its path from the cache */
  perChallengeMs: number
  /** a cold proof's cache load and check, per GiB of padded piece */
  perPaddedGiBMs: number
}

/** An honest provider's proving time, twice the cold figures of bench/proofs.ts (1 GiB: 16 × 1.5 + 2 × 10 + 5 = 49 ms). */
export const HONEST_PROVING: Readonly<ProvingModel> = Object.freeze({ baseMs: 5, perChallengeMs: 1.5, perPaddedGiBMs: 10 })

/** How many times the modelled proving time the deadline allows. */
export const PROVING_FACTOR = 4

/** Added to every automatic deadline: scheduling, garbage collection, a loaded machine. */
export const DEADLINE_SLACK_MS = 1000

/** The largest round trip counted: about once around the world. */
export const MAX_RTT_MS = 300

/** Round trips measured before a challenge: the fastest counts. */
const RTT_SAMPLES = 3

const GiB = 1n << 30n

/** The modelled time an honest provider needs to prove `challenges` leaves of a piece of `paddedSize` bytes. */
export function provingMs (paddedSize: bigint, challenges: number, model: ProvingModel = HONEST_PROVING): number {
  const gib = Number(paddedSize) / Number(GiB)
  return model.baseMs + challenges * model.perChallengeMs + gib * model.perPaddedGiBMs
}

/** The automatic deadline, ms, for a proof of `challenges` leaves of a piece of `paddedSize` bytes from a provider `rttMs` away. */
export function autoDeadlineMs (paddedSize: bigint, challenges: number, rttMs: number): number {
  if (!Number.isFinite(rttMs) || rttMs < 0) throw new RangeError(`a round trip is a non-negative number of ms, got ${rttMs}`)
  const rtt = Math.min(rttMs, MAX_RTT_MS)
  return Math.ceil(2 * rtt + PROVING_FACTOR * provingMs(paddedSize, challenges) + DEADLINE_SLACK_MS)
}

/**
 * The fastest of a few round trips to the provider (`GET /v1/ask`), ms; the
 * first also opens the connection and is not counted when others succeed.
 * Undefined when none succeeds: the audit then keeps its fixed deadline and
 * finds the provider unreachable as usual.
 */
export async function measureRtt (endpoint: string, samples = RTT_SAMPLES): Promise<number | undefined> {
  const client = new ProviderClient(endpoint, { headersTimeoutMs: 5000, bodyTimeoutMs: 5000, messageTimeoutMs: 5000 })
  const times: number[] = []
  for (let i = 0; i <= samples; i++) {
    const t0 = performance.now()
    try {
      await client.ask()
    } catch {
      continue
    }
    if (i > 0) times.push(performance.now() - t0)
  }
  return times.length === 0 ? undefined : Math.min(...times)
}
