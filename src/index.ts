/**
 * The library surface of cairn for scripts (package.json `exports["."]`):
 * what the commands `add`, `pack`, `piece`, `get`, `deal` and `audit` are
 * built from, without the command line around them. The proofs library
 * stands alone at `cairn-storage/proofs`. Anything not exported here is
 * internal and may change between versions.
 */

// errors: every failure is a CairnError with a stable ERR_ code
export { CairnError, codes, exitStatusOf, isCairnError, type ErrorCode } from './errors.js'

// add and pack: UnixFS import (unixfs-v1-2025 by default) and its CARv1 stream
export { planImport, carStream, type ImportOptions, type ImportPlan } from './unixfs/importer.js'
export { Repo, resolveRepoPath } from './repo/repo.js'

// piece: CommP and piece CIDs (FRC-0069)
export { pieceOf, type PieceInfo } from '../proofs/index.js'

// the wire protocol both sides speak (docs/protocol.md)
export type { Ask, Proposal, SignedAcceptance, SignedAsk, SignedDealStatus, SignedProposal, SignedProofRequest } from './protocol/interface.js'
export { verifyProofAnswer, type ProofExpectation, type SignedProof } from './protocol/proof.js'

// the client: the provider API, deals, verified retrieval, audits
export { ProviderClient, type ProviderClientOptions } from './client/provider-client.js'
export { makeDeal, resumeDeal, cancelDeal, type DealContext, type DealResult, type DealTerms } from './client/deal.js'
export { get, parseTarget, sourcesFor, type GetOptions, type GetResult, type Source } from './client/retrieve.js'
export { auditDeal, activeDeals, loadDeal, type AuditContext, type AuditOptions, type AuditResult } from './client/audit.js'
export { LevelLedger } from './ledger/level.js'
