/**
 * The Beta CDF and quantile against SciPy 1.17.1 (scipy.stats.beta.ppf and
 * .cdf, computed with `python3 -c "from scipy.stats import beta; …"`), and
 * against closed forms: Beta(1, 1) is uniform, Beta(a, 1) has CDF x^a, and for
 * whole a, b, I_x(a, b) = P(Binomial(a + b − 1, x) ≥ a) (DLMF 8.17.5).
 */
import test from 'ava'
import fc from 'fast-check'
import { betaCdf, betaQuantile } from '../../src/reputation/beta.js'

const SCIPY_PPF: Array<[number, number, number, number]> = [
  // [p, a, b, scipy.stats.beta.ppf(p, a, b)]
  [0.05, 1, 1, 0.05],
  [0.05, 2, 5, 0.06284989170835438],
  [0.05, 0.5, 0.5, 0.0061558297024311365],
  [0.05, 10, 2, 0.6356405107527575],
  [0.05, 50, 1, 0.9418449208830277],
  [0.5, 1, 1, 0.5],
  [0.05, 100, 3, 0.9395635371686512],
  [0.05, 2450.5, 52.3, 0.9741938514092655],
  [0.9, 3.7, 1.2, 0.9557125408906251],
  [0.05, 1, 20, 0.0025613787765302806]
]

const SCIPY_CDF: Array<[number, number, number, number]> = [
  // [x, a, b, scipy.stats.beta.cdf(x, a, b)]
  [0.3, 2, 5, 0.5798250000000003],
  [0.2, 0.5, 0.5, 0.2951672353008665],
  [0.9, 10, 2, 0.6973568802000002],
  [0.97, 2450.5, 52.3, 0.0020935335622724372]
]

test('quantile matches SciPy', (t) => {
  for (const [p, a, b, want] of SCIPY_PPF) {
    const got = betaQuantile(p, a, b)
    t.true(Math.abs(got - want) < 1e-9, `ppf(${p}, ${a}, ${b}) = ${got}, SciPy says ${want}`)
  }
})

test('CDF matches SciPy', (t) => {
  for (const [x, a, b, want] of SCIPY_CDF) {
    const got = betaCdf(x, a, b)
    t.true(Math.abs(got - want) < 1e-10 * Math.max(1, want) + 1e-13, `cdf(${x}, ${a}, ${b}) = ${got}, SciPy says ${want}`)
  }
})

function binomialTail (n: number, x: number, k: number): number {
  let sum = 0
  let logC = 0
  for (let j = 0; j <= n; j++) {
    if (j > 0) logC += Math.log(n - j + 1) - Math.log(j)
    if (j >= k) sum += Math.exp(logC + j * Math.log(x) + (n - j) * Math.log1p(-x))
  }
  return sum
}

test('CDF equals the binomial tail for whole shapes (DLMF 8.17.5)', (t) => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 60 }), fc.double({ min: 0.001, max: 0.999, noNaN: true }), (a, b, x) => {
    const want = binomialTail(a + b - 1, x, a)
    return Math.abs(betaCdf(x, a, b) - want) < 1e-10
  }))
  t.pass()
})

// shapes below ½ put quantiles within 1e-16 of 0 or 1, beyond what a double can place; scores use a prior of at least 1
test('quantile inverts the CDF and matches the closed forms', (t) => {
  fc.assert(fc.property(fc.double({ min: 0.5, max: 500, noNaN: true }), fc.double({ min: 0.5, max: 500, noNaN: true }), fc.double({ min: 0.001, max: 0.999, noNaN: true }), (a, b, p) => {
    const x = betaQuantile(p, a, b)
    return x >= 0 && x <= 1 && Math.abs(betaCdf(x, a, b) - p) < 1e-8
  }))
  for (const a of [0.5, 1, 3, 40]) t.true(Math.abs(betaQuantile(0.05, a, 1) - Math.pow(0.05, 1 / a)) < 1e-12)
  t.is(betaQuantile(0, 2, 3), 0)
  t.is(betaQuantile(1, 2, 3), 1)
})

test('bad shapes and probabilities are RangeErrors', (t) => {
  t.throws(() => betaQuantile(0.05, 0, 1), { instanceOf: RangeError })
  t.throws(() => betaQuantile(1.5, 1, 1), { instanceOf: RangeError })
  t.throws(() => betaCdf(0.5, -1, 1), { instanceOf: RangeError })
})
