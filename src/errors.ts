/**
 * One error family for everything cairn reports to a user. Callers match on
 * `code`, never on the message: codes are stable, messages may change.
 *
 * The exit status of each code is decided here and only here (README "Exit status and error codes"):
 * 1 internal · 2 usage · 3 verification failed · 4 not found · 5 refused or unreachable.
 */

export const ExitStatus = {
  internal: 1,
  usage: 2,
  verification: 3,
  notFound: 4,
  refused: 5
} as const

export type ExitKind = keyof typeof ExitStatus

/**
 * Every code cairn can print, with the kind of failure it is. Add new codes
 * here; a code that is not in this table is a programmer mistake.
 */
export const codes = {
  // internal
  ERR_INTERNAL: 'internal',
  ERR_IO: 'internal',
  ERR_NO_SPACE: 'internal',
  ERR_NOT_IMPLEMENTED: 'internal',

  // usage
  ERR_USAGE: 'usage',
  ERR_INVALID_ARGUMENT: 'usage',
  ERR_DISTINCT_NEEDS_ENCRYPTION: 'usage',
  ERR_INVALID_CID: 'usage',
  ERR_INVALID_PROFILE: 'usage',
  ERR_INVALID_CHUNK_SIZE: 'usage',
  ERR_INVALID_MAX_LINKS: 'usage',
  ERR_NOT_A_FILE: 'usage',
  ERR_UNSUPPORTED_FILE_TYPE: 'usage',
  ERR_TARGET_EXISTS: 'usage',
  ERR_REPO_EXISTS: 'usage',
  ERR_REPO_LOCKED: 'refused',
  ERR_INVALID_JSON: 'usage',
  ERR_UNKNOWN_FIELD: 'usage',
  ERR_CONTENT_LENGTH: 'usage',
  ERR_LENGTH_REQUIRED: 'usage',
  ERR_PAYLOAD_TOO_LARGE: 'usage',
  ERR_HEADERS_TOO_LARGE: 'usage',
  ERR_BAD_REQUEST: 'usage',
  ERR_METHOD_NOT_ALLOWED: 'usage',
  ERR_NOT_ACCEPTABLE: 'usage',
  ERR_RANGE_NOT_SATISFIABLE: 'usage',
  // encryption (docs/encryption.md)
  ERR_INVALID_RECIPIENT: 'usage',
  ERR_INVALID_IDENTITY: 'usage',
  ERR_NOT_ENCRYPTED: 'usage',
  // content routing (docs/routing.md)
  ERR_INVALID_PEER_ID: 'usage',
  ERR_INVALID_MULTIADDR: 'usage',

  // verification
  ERR_BLOCK_MISMATCH: 'verification',
  ERR_CAR_TRUNCATED: 'verification',
  ERR_CAR_HEADER: 'verification',
  ERR_CAR_NO_ROOTS: 'verification',
  ERR_CAR_MULTIPLE_ROOTS: 'verification',
  ERR_CAR_ROOT_MISSING: 'verification',
  ERR_CAR_BLOCK_MISSING: 'verification',
  ERR_CAR_DUPLICATE_BLOCK: 'verification',
  ERR_CAR_BLOCK_TOO_LARGE: 'verification',
  ERR_CAR_UNSUPPORTED_VERSION: 'verification',
  ERR_DAG_INVALID: 'verification',
  ERR_UNSAFE_PATH: 'verification',
  ERR_FILE_CHANGED: 'verification',
  ERR_PIECE_MISMATCH: 'verification',
  ERR_REPO_CORRUPT: 'verification',
  ERR_INVALID_MESSAGE: 'verification',
  ERR_INVALID_KEY: 'verification',
  ERR_WRONG_SIGNER: 'verification',
  ERR_BAD_SIGNATURE: 'verification',
  ERR_LEDGER_BROKEN: 'verification',
  // a counterparty's ledger no longer holds a head it signed (docs/ledger.md "Witnessed heads")
  ERR_LEDGER_REWRITTEN: 'verification',
  // proofs of storage (docs/protocol.md "Proofs"): each way a proof can fail its audit has its own code
  ERR_PIECE_CORRUPT: 'verification',
  // raised by proofs/ (which imports nothing from src/) and shown as they are
  ERR_INVALID_PIECE_CID: 'usage',
  ERR_HASHER_FINISHED: 'internal',
  ERR_PIECE_READ: 'internal',
  ERR_PROOF_PIECE_MISMATCH: 'verification',
  ERR_LAYER_CACHE_INVALID: 'verification',
  ERR_PROOF_UNSIGNED: 'verification',
  ERR_PROOF_WRONG_SIGNER: 'verification',
  ERR_PROOF_BAD_SIGNATURE: 'verification',
  ERR_PROOF_WRONG_DEAL: 'verification',
  ERR_PROOF_WRONG_PIECE: 'verification',
  ERR_PROOF_SEED_MISMATCH: 'verification',
  ERR_PROOF_COUNT_MISMATCH: 'verification',
  ERR_PROOF_LEAF_INDEX: 'verification',
  ERR_PROOF_ROOT_MISMATCH: 'verification',
  ERR_PROOF_MALFORMED: 'verification',
  ERR_PROOF_REFUSED: 'verification',
  ERR_PROOF_MISSED: 'verification',
  ERR_AUDIT_FAILED: 'verification',
  // encrypted content: no identity here opens the file, or its header or payload does not authenticate
  ERR_NOT_A_RECIPIENT: 'verification',
  ERR_DECRYPTION_FAILED: 'verification',
  // content routing (docs/routing.md): an advertisement or a router's answer that does not check out
  ERR_INVALID_ADVERTISEMENT: 'verification',
  ERR_INVALID_ROUTER_RESPONSE: 'verification',

  // not found
  ERR_NOT_FOUND: 'notFound',
  ERR_PATH_NOT_FOUND: 'notFound',
  ERR_REPO_NOT_FOUND: 'notFound',
  ERR_BLOCK_NOT_FOUND: 'notFound',
  ERR_DEAL_NOT_FOUND: 'notFound',
  ERR_PIECE_NOT_FOUND: 'notFound',
  ERR_PROVIDER_NOT_RUNNING: 'notFound',
  ERR_PRECONDITION_FAILED: 'notFound',
  // repair (README "Reputation, placement and repair"): nothing left to copy from, or nowhere to copy to
  ERR_NO_HEALTHY_REPLICA: 'notFound',
  ERR_NO_REPAIR_TARGET: 'notFound',

  // refused or unreachable
  ERR_PERMISSION_DENIED: 'refused',
  ERR_UNREACHABLE: 'refused',
  ERR_ADDRESS_IN_USE: 'refused',
  ERR_TIMEOUT: 'refused',
  ERR_UPLOAD_TOO_SLOW: 'refused',
  ERR_UNAUTHORIZED: 'refused',
  ERR_SHUTTING_DOWN: 'refused',
  ERR_TOO_MANY_CONNECTIONS: 'refused',
  ERR_CLIENT_ABORTED: 'refused',
  // an alert command or webhook that failed, timed out or refused it (docs/monitoring.md); logged, never fatal
  ERR_ALERT_FAILED: 'refused',
  // a provider's answer larger than any honest one, or trickling in too slowly to finish
  ERR_RESPONSE_TOO_LARGE: 'refused',
  ERR_TRANSFER_TOO_SLOW: 'refused',
  ERR_UPLOAD_IN_PROGRESS: 'refused',
  ERR_DEAL_STATE: 'refused',
  // a deal past its end, or not uploaded by its deadline (docs/protocol.md "Deal lifecycle")
  ERR_DEAL_EXPIRED: 'refused',
  // deal rules (src/protocol/rules.ts): each names the rule and both values
  ERR_WRONG_PROVIDER: 'refused',
  ERR_ASK_EXPIRED: 'refused',
  ERR_LABEL_TOO_LONG: 'refused',
  ERR_PIECE_SIZE_MISMATCH: 'refused',
  ERR_PIECE_TOO_SMALL: 'refused',
  ERR_PIECE_TOO_LARGE: 'refused',
  ERR_PROPOSAL_EXPIRED: 'refused',
  ERR_START_IN_PAST: 'refused',
  ERR_START_TOO_LATE: 'refused',
  ERR_DURATION_TOO_SHORT: 'refused',
  ERR_DURATION_TOO_LONG: 'refused',
  ERR_PRICE_TOO_LOW: 'refused',
  ERR_AMOUNT_TOO_LARGE: 'refused',
  ERR_COLLATERAL_TOO_LOW: 'refused',
  ERR_COLLATERAL_TOO_HIGH: 'refused',
  ERR_PROVING_PERIOD_TOO_SHORT: 'refused',
  ERR_TOO_MANY_CHALLENGES: 'refused',
  ERR_INSUFFICIENT_CAPACITY: 'refused',
  ERR_REPLAYED_DEAL: 'refused',
  ERR_REPLAYED_NONCE: 'refused',
  // a message version this node no longer takes (docs/protocol.md)
  ERR_UNSUPPORTED_VERSION: 'refused',
  // proof requests (docs/protocol.md "Proof requests")
  ERR_REQUEST_EXPIRED: 'refused',
  ERR_RATE_LIMITED: 'refused',
  // the PDP HTTP API (docs/pdp.md)
  ERR_UPLOAD_NOT_FOUND: 'notFound',
  ERR_UPLOAD_DONE: 'refused',
  ERR_UPLOAD_PENDING: 'refused',
  ERR_UPLOAD_TOO_SMALL: 'usage',
  ERR_PIECE_CID_MISMATCH: 'verification',
  ERR_PARK_QUOTA: 'refused',
  ERR_PARK_QUOTA_CLIENT: 'refused',
  ERR_TOO_MANY_UPLOADS: 'refused',
  ERR_INVALID_EXTRA_DATA: 'usage',
  ERR_DATA_SET_NOT_FOUND: 'notFound',
  ERR_DATA_SET_PIECE_NOT_FOUND: 'notFound',
  ERR_TX_NOT_FOUND: 'notFound',
  // a signed CreateDataSet whose (payer, clientDataSetId) already made a data set
  ERR_REPLAYED_DATA_SET: 'refused',
  ERR_DATA_SET_TERMINATED: 'refused',
  // a data set past the end of its term (docs/pdp.md "Data sets as deals")
  ERR_DATA_SET_EXPIRED: 'refused',
  ERR_NO_PAYEE: 'refused',
  // POST /pdp/piece/pull: the source did not give the piece (unreachable, error, other bytes)
  ERR_PULL_FAILED: 'refused',
  // a pull source whose host is a loopback, private, link-local or other special address (docs/pdp.md "Pull")
  ERR_PULL_SOURCE_FORBIDDEN: 'refused',
  // a pull's data-set step that a restart of the provider cut short
  ERR_PULL_INTERRUPTED: 'refused',
  // an indexer's chain for a provider does not end where the advertisement starts (docs/routing.md)
  ERR_AD_CHAIN_GAP: 'refused',

  // cluster mode (docs/cluster.md): the shared PostgreSQL database, tasks, node-to-node reads
  ERR_DB_URL: 'usage',
  ERR_DB_UNREACHABLE: 'refused',
  ERR_DB_AUTH: 'refused',
  ERR_DB_TIMEOUT: 'refused',
  ERR_DB_CONFLICT: 'refused',
  ERR_DB_SCHEMA: 'refused',
  ERR_DB: 'internal',
  ERR_CLUSTER_SECRET: 'usage',
  ERR_CLUSTER_AUTH: 'refused',
  ERR_CLUSTER_IDENTITY: 'refused',
  // a proof another node computed for this one that does not verify against the piece CID (docs/cluster.md)
  ERR_CLUSTER_BAD_PROOF: 'verification',
  ERR_TASK_NOT_OWNED: 'refused',
  // a PDP data-set change whose reads another node's write changed before it committed (src/pdp/reads.ts): run again, then given up
  ERR_STATE_CHANGED: 'refused'
} as const satisfies Record<string, ExitKind>

export type ErrorCode = keyof typeof codes

export class CairnError extends Error {
  readonly code: ErrorCode
  readonly details: Record<string, unknown> | undefined

  constructor (code: ErrorCode, message: string, options?: { cause?: unknown, details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'CairnError'
    this.code = code
    this.details = options?.details
  }

  get exitStatus (): number {
    return ExitStatus[codes[this.code]]
  }

  toJSON (): { code: ErrorCode, message: string, details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details }
  }
}

export function isCairnError (err: unknown): err is CairnError {
  return err instanceof Error && typeof (err as CairnError).code === 'string' &&
    Object.hasOwn(codes, (err as CairnError).code) && (err as CairnError).name === 'CairnError'
}

export function exitStatusOf (code: string): number {
  return Object.hasOwn(codes, code) ? ExitStatus[codes[code as ErrorCode]] : ExitStatus.internal
}

/** Turns a Node.js system error on `path` into a coded error a user can act on. */
export function fromSystemError (err: unknown, path: string): CairnError {
  const sys = err as NodeJS.ErrnoException
  switch (sys?.code) {
    case 'ENOENT': return new CairnError('ERR_PATH_NOT_FOUND', `no such file or directory: ${path}`, { cause: err })
    case 'EACCES':
    case 'EPERM': return new CairnError('ERR_PERMISSION_DENIED', `permission denied: ${path}`, { cause: err })
    case 'ENOSPC': return new CairnError('ERR_NO_SPACE', `no space left on device writing ${path}`, { cause: err })
    case 'EISDIR': return new CairnError('ERR_NOT_A_FILE', `expected a file, found a directory: ${path}`, { cause: err })
    case 'ENOTDIR': return new CairnError('ERR_PATH_NOT_FOUND', `not a directory on the way to: ${path}`, { cause: err })
    default:
      if (err instanceof CairnError) return err
      return new CairnError('ERR_IO', `${sys?.code ?? 'I/O error'} on ${path}: ${sys?.message ?? String(err)}`, { cause: err })
  }
}
