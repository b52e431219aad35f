/**
 * Weighted logistic regression by iteratively reweighted least squares
 * (Newton's method on the log-likelihood, with a small ridge term and step
 * halving so it always descends), for the few features of the fault
 * predictor. Hand-written: a dozen lines of Newton's method need no library,
 * and the fit must be reproducible bit for bit from the training seeds.
 */

export interface Dataset {
  /** row-major, `width` values per row */
  x: Float64Array
  y: Float64Array
  weight: Float64Array
  width: number
  rows: number
}

function sigmoid (z: number): number {
  return 1 / (1 + Math.exp(-Math.max(-30, Math.min(30, z))))
}

function negLogLikelihood (d: Dataset, w: Float64Array, ridge: number): number {
  let sum = 0
  for (let i = 0; i < d.rows; i++) {
    let z = 0
    for (let j = 0; j < d.width; j++) z += w[j] * d.x[i * d.width + j]
    z = Math.max(-30, Math.min(30, z))
    // log(1 + e^z) − y·z, computed stably
    sum += d.weight[i] * ((z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z))) - d.y[i] * z)
  }
  for (let j = 0; j < d.width; j++) sum += 0.5 * ridge * w[j] * w[j]
  return sum
}

/** Solves A·x = b for a small symmetric positive definite A (Gaussian elimination with partial pivoting). */
export function solve (a: number[][], b: number[]): number[] {
  const n = b.length
  const m = a.map((row, i) => [...row, b[i]])
  for (let c = 0; c < n; c++) {
    let pivot = c
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[pivot][c])) pivot = r
    ;[m[c], m[pivot]] = [m[pivot], m[c]]
    if (m[c][c] === 0) throw new RangeError('singular system')
    for (let r = c + 1; r < n; r++) {
      const f = m[r][c] / m[c][c]
      for (let k = c; k <= n; k++) m[r][k] -= f * m[c][k]
    }
  }
  const x = new Array<number>(n).fill(0)
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r][n]
    for (let k = r + 1; k < n; k++) s -= m[r][k] * x[k]
    x[r] = s / m[r][r]
  }
  return x
}

/** Maximum-likelihood weights (first column of x is the bias). */
export function fitLogistic (d: Dataset, ridge = 1e-2, iterations = 50): number[] {
  const n = d.width
  const w = new Float64Array(n)
  let positives = 0
  let total = 0
  for (let i = 0; i < d.rows; i++) { positives += d.weight[i] * d.y[i]; total += d.weight[i] }
  const base = Math.min(1 - 1e-6, Math.max(1e-6, positives / Math.max(1e-12, total)))
  w[0] = Math.log(base / (1 - base))
  let current = negLogLikelihood(d, w, ridge)
  for (let it = 0; it < iterations; it++) {
    const grad = new Array<number>(n).fill(0)
    const hess = Array.from({ length: n }, () => new Array<number>(n).fill(0))
    for (let i = 0; i < d.rows; i++) {
      const o = i * d.width
      let z = 0
      for (let j = 0; j < n; j++) z += w[j] * d.x[o + j]
      const p = sigmoid(z)
      const g = d.weight[i] * (p - d.y[i])
      const h = d.weight[i] * p * (1 - p)
      for (let j = 0; j < n; j++) {
        const xj = d.x[o + j]
        if (xj === 0) continue
        grad[j] += g * xj
        for (let k = 0; k <= j; k++) hess[j][k] += h * xj * d.x[o + k]
      }
    }
    for (let j = 0; j < n; j++) {
      grad[j] += ridge * w[j]
      hess[j][j] += ridge
      for (let k = 0; k < j; k++) hess[k][j] = hess[j][k]
    }
    const step = solve(hess, grad)
    let t = 1
    let next = w
    let value = current
    for (;;) {
      next = w.map((v, j) => v - t * step[j])
      value = negLogLikelihood(d, next, ridge)
      if (value <= current || t < 1e-6) break
      t /= 2
    }
    const gain = current - value
    w.set(next)
    current = value
    if (gain < 1e-6 * Math.max(1, Math.abs(current))) break
  }
  return Array.from(w)
}
