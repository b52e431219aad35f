/** Moved to src/protocol/rules.ts; this re-export keeps older import paths building. */
export * from '../protocol/rules.js'
