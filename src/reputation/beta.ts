/**
 * The Beta distribution's CDF (the regularized incomplete beta function
 * I_x(a, b)) and its quantile, enough to rank providers by a lower credible
 * bound of their pass rate (README "Reputation, placement and repair"). No dependencies, so the simulator and a
 * third party auditing a score compute exactly the same numbers.
 *
 * I_x(a, b) by the continued fraction of DLMF 8.17.22 evaluated with the
 * modified Lentz method (Numerical Recipes §6.4), ln Γ by the Lanczos
 * approximation (g = 7, n = 9); the quantile by Newton's method on the CDF,
 * kept inside a shrinking bisection bracket so it always converges.
 */

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
  -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
  1.5056327351493116e-7
]

/** ln Γ(x) for x > 0. */
export function logGamma (x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x)
  x -= 1
  let sum = LANCZOS[0]
  for (let i = 1; i < 9; i++) sum += LANCZOS[i] / (x + i)
  const t = x + 7.5
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(sum)
}

/** ln B(a, b) */
export function logBeta (a: number, b: number): number {
  return logGamma(a) + logGamma(b) - logGamma(a + b)
}

function checkShape (a: number, b: number): void {
  if (!(a > 0) || !(b > 0) || !Number.isFinite(a) || !Number.isFinite(b)) throw new RangeError(`Beta shape parameters must be finite and positive, got a=${a}, b=${b}`)
}

const EPS = 1e-15
const TINY = 1e-300

/** The continued fraction for I_x(a, b), converging fast for x < (a + 1) / (a + b + 2). */
function continuedFraction (a: number, b: number, x: number): number {
  const qab = a + b
  const qap = a + 1
  const qam = a - 1
  let c = 1
  let d = 1 - qab * x / qap
  if (Math.abs(d) < TINY) d = TINY
  d = 1 / d
  let h = d
  // iterations grow like sqrt(max(a, b)); 100 000 covers shapes far beyond any ledger
  for (let m = 1; m <= 100_000; m++) {
    const m2 = 2 * m
    let aa = m * (b - m) * x / ((qam + m2) * (a + m2))
    d = 1 + aa * d
    if (Math.abs(d) < TINY) d = TINY
    c = 1 + aa / c
    if (Math.abs(c) < TINY) c = TINY
    d = 1 / d
    h *= d * c
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
    d = 1 + aa * d
    if (Math.abs(d) < TINY) d = TINY
    c = 1 + aa / c
    if (Math.abs(c) < TINY) c = TINY
    d = 1 / d
    const del = d * c
    h *= del
    if (Math.abs(del - 1) < EPS) return h
  }
  return h
}

/** I_x(a, b) = P(X ≤ x) for X ~ Beta(a, b). */
export function betaCdf (x: number, a: number, b: number): number {
  checkShape(a, b)
  if (Number.isNaN(x)) throw new RangeError('x is NaN')
  if (x <= 0) return 0
  if (x >= 1) return 1
  const front = Math.exp(a * Math.log(x) + b * Math.log1p(-x) - logBeta(a, b))
  if (x < (a + 1) / (a + b + 2)) return front * continuedFraction(a, b, x) / a
  return 1 - front * continuedFraction(b, a, 1 - x) / b
}

/** The density of Beta(a, b) at x in (0, 1). */
export function betaPdf (x: number, a: number, b: number): number {
  checkShape(a, b)
  if (x <= 0 || x >= 1) return 0
  return Math.exp((a - 1) * Math.log(x) + (b - 1) * Math.log1p(-x) - logBeta(a, b))
}

/** The p-quantile of Beta(a, b): the x with I_x(a, b) = p. */
export function betaQuantile (p: number, a: number, b: number): number {
  checkShape(a, b)
  if (!(p >= 0 && p <= 1)) throw new RangeError(`a probability must be in [0, 1], got ${p}`)
  if (p === 0) return 0
  if (p === 1) return 1
  let lo = 0
  let hi = 1
  // start from the mean: the shapes met in ranking are concentrated around it
  let x = a / (a + b)
  for (let i = 0; i < 200; i++) {
    const f = betaCdf(x, a, b) - p
    if (Math.abs(f) < 1e-14) return x
    if (f < 0) lo = x
    else hi = x
    const density = betaPdf(x, a, b)
    let next = density > 0 ? x - f / density : NaN
    if (!(next > lo && next < hi)) next = (lo + hi) / 2
    // relative steps: quantiles of U-shaped Betas can be far below 1e-15
    if (Math.abs(next - x) <= 1e-15 * x || hi - lo <= 1e-15 * hi) return next
    x = next
  }
  return x
}
