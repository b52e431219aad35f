/** Moved to src/protocol/acceptance.ts; this re-export keeps older import paths building. */
export * from '../protocol/acceptance.js'
