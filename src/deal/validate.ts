/** Moved to src/protocol/validate.ts; this re-export keeps older import paths building. */
export * from '../protocol/validate.js'
