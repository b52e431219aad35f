/**
 * The logistic fit behind the fault predictor's weights: it recovers known
 * weights from data drawn from them, and a row of weight 2 counts as two.
 */
import test from 'ava'
import { fitLogistic, solve, type Dataset } from '../../sim/logistic.js'
import { Rng } from '../../sim/random.js'

function draw (truth: number[], rows: number, seed: number): Dataset {
  const rng = new Rng(seed)
  const width = truth.length
  const x = new Float64Array(rows * width)
  const y = new Float64Array(rows)
  for (let i = 0; i < rows; i++) {
    x[i * width] = 1
    x[i * width + 1] = rng.between(-2, 2)
    x[i * width + 2] = rng.next() < 0.3 ? 1 : 0
    let z = 0
    for (let j = 0; j < width; j++) z += truth[j] * x[i * width + j]
    y[i] = rng.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0
  }
  return { x, y, weight: new Float64Array(rows).fill(1), width, rows }
}

test('recovers the weights the data were drawn from', (t) => {
  const truth = [-1, 1.5, -2]
  const w = fitLogistic(draw(truth, 40_000, 9), 1e-6)
  for (const [j, v] of truth.entries()) t.true(Math.abs(w[j] - v) < 0.1, `w${j} = ${w[j]}, drawn with ${v}`)
})

test('a row of weight 2 counts as the row twice', (t) => {
  const d = draw([0.5, -1, 1], 2_000, 3)
  const doubled: Dataset = { ...d, weight: new Float64Array(d.rows).fill(2) }
  const twice: Dataset = {
    x: Float64Array.from([...d.x, ...d.x]),
    y: Float64Array.from([...d.y, ...d.y]),
    weight: new Float64Array(2 * d.rows).fill(1),
    width: d.width,
    rows: 2 * d.rows
  }
  const a = fitLogistic(doubled)
  const b = fitLogistic(twice)
  for (let j = 0; j < a.length; j++) t.true(Math.abs(a[j] - b[j]) < 1e-9)
})

test('solve: a small system, and a singular one refused', (t) => {
  const x = solve([[4, 1, 0], [1, 3, 1], [0, 1, 2]], [6, 10, 8])
  for (const [i, v] of [1, 2, 3].entries()) t.true(Math.abs(x[i] - v) < 1e-12)
  t.throws(() => solve([[1, 2], [2, 4]], [1, 2]), { instanceOf: RangeError })
})
