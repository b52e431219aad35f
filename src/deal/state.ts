/** Moved to src/protocol/state.ts; this re-export keeps older import paths building. */
export * from '../protocol/state.js'
