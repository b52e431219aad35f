/**
 * Worker thread of the 'workers' engine: hashes chunks that live in
 * SharedArrayBuffers with the portable engine and posts back their roots.
 */
import { parentPort } from 'node:worker_threads'
import { portableRootSync } from './engine.js'

interface Job { id: number, bytes: Uint8Array, quads: number }

parentPort?.on('message', (job: Job) => {
  try {
    const root = portableRootSync(job.bytes, 0, job.quads)
    parentPort?.postMessage({ id: job.id, root })
  } catch (err) {
    parentPort?.postMessage({ id: job.id, error: (err as Error).message })
  }
})
