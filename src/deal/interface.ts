/** Moved to src/protocol/interface.ts; this re-export keeps older import paths building. */
export * from '../protocol/interface.js'
