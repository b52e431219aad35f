/**
 * Worker thread of the seal pool (seal-pool.ts): seals runs of age payload
 * chunks that live in SharedArrayBuffer slots, writing the sealed chunks
 * (ciphertext ‖ tag each) one after another into the slot's output.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { slotViews, type SealJob } from './seal-pool.js'
import { CHUNK, seal, TAG } from './stream.js'

const slots = (workerData as { slots: SharedArrayBuffer[] }).slots.map(slotViews)

parentPort?.on('message', (job: SealJob) => {
  try {
    const { input, output } = slots[job.slot]
    let out = 0
    for (let j = 0; j < job.count; j++) {
      const from = j * CHUNK
      const [body, tag] = seal(job.key, job.first + j, job.first + j === job.last, input.subarray(from, Math.min(job.length, from + CHUNK)))
      output.set(body, out)
      output.set(tag, out + body.byteLength)
      out += body.byteLength + TAG
    }
    parentPort?.postMessage({ id: job.id, length: out })
  } catch (err) {
    parentPort?.postMessage({ id: job.id, error: (err as Error).message })
  }
})
