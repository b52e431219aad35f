/** Moved to src/protocol/ask.ts; this re-export keeps older import paths building. */
export * from '../protocol/ask.js'
