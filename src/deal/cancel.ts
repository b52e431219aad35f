/** Moved to src/protocol/cancel.ts; this re-export keeps older import paths building. */
export * from '../protocol/cancel.js'
