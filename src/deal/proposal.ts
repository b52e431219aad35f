/** Moved to src/protocol/proposal.ts; this re-export keeps older import paths building. */
export * from '../protocol/proposal.js'
