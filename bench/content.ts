/**
 * The content commands beside their peers on one input: CommP (`cairn piece`
 * vs the Rust→WASM hasher and data-segment), `cairn add` and `cairn pack` vs
 * `ipfs-car pack --no-wrap`. Every piece CID and every root must agree.
 */
import { rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { measure, type Measure } from './measure.js'
import { sameAnswer, type Command, type Pair } from './pairs.js'
import { BIN, IPFS_CAR, PEERS, type SizeContext } from './plan.js'

const rootOf = (run: Measure): string => run.tool.startsWith('cairn') ? (JSON.parse(run.output) as { root: string }).root : run.output.trim()

/**
 * `cairn add` into a repo of its own each run: a second add of the same bytes
 * into one repo would store nothing. `flags` go after `add` (`--encrypt`).
 */
export function addCommand (repo: string, input: string, size: number, check?: (run: Measure) => Promise<unknown>, flags: string[] = [], tool = 'cairn add', bin = BIN): Command {
  return {
    tool,
    cmd: process.execPath,
    args: [bin, '--repo', repo, '--json', 'add', ...flags, input],
    bytes: size,
    before: async () => { await measure('init', 'cairn', 0, process.execPath, [BIN, '--repo', repo, 'init']) },
    after: async (run) => { await check?.(run); await rm(repo, { recursive: true, force: true }) }
  }
}

export async function contentPairs (ctx: SizeContext): Promise<Pair[]> {
  const { work, input, size, label } = ctx
  const what = 'wall time of the whole command in its own process; MiB/s of the input file'
  const given = `${label} of AES-CTR bytes, one file`
  // cairn piece --json says pieceCid (docs/json.md), the peers' scripts cid
  const piece = sameAnswer(`piece CIDs of ${label}`, run => { const out = JSON.parse(run.output) as { cid?: string, pieceCid?: string }; return out.pieceCid ?? out.cid ?? '(none)' })
  const cairnPiece = { tool: 'cairn piece', cmd: process.execPath, args: [BIN, '--json', 'piece', input], bytes: size, after: piece }
  const pairs: Pair[] = [
    { name: `piece ${label}`, what, input: given, cairn: cairnPiece, peer: { tool: 'fr32-sha2-256-trunc254 (WASM)', cmd: process.execPath, args: [PEERS, 'fr32-wasm', input], bytes: size, after: piece } }
  ]
  if (!ctx.skipSlowPeers) {
    pairs.push({ name: `piece ${label}`, what, input: given, cairn: cairnPiece, peer: { tool: '@web3-storage/data-segment', cmd: process.execPath, args: [PEERS, 'data-segment', input], bytes: size, after: piece } })
  }

  const roots = sameAnswer(`roots of ${label}`, rootOf)
  // add stores its CAR under the piece CID that pack computes of the same CAR
  const stored = sameAnswer(`piece CIDs of add and pack, ${label}`, run => {
    const out = JSON.parse(run.output) as { pieceCid?: string }
    return out.pieceCid ?? '(none)'
  })
  const ipfsCarOut = join(work, 'ipfs-car.car')
  const ipfsCar = {
    tool: 'ipfs-car pack --no-wrap',
    cmd: process.execPath,
    args: [IPFS_CAR, 'pack', input, '--no-wrap', '-o', ipfsCarOut],
    bytes: size,
    after: async (run: Measure) => { await roots(run); await rm(ipfsCarOut, { force: true }) }
  }
  pairs.push({
    name: `add ${label}`,
    what: `${what}; cairn builds the DAG, writes the DFS CAR into its piece store and computes CommP`,
    input: given,
    cairn: addCommand(join(work, 'add-repo'), input, size, async (run) => { await roots(run); await stored(run) }),
    peer: ipfsCar
  })

  const packCommand = (bin: string, tool: string, out: string): Command => ({
    tool,
    cmd: process.execPath,
    args: [bin, '--json', 'pack', input, '-o', out],
    bytes: size,
    after: async (run) => {
      await roots(run)
      await stored(run)
      await rm(out, { force: true })
    }
  })
  pairs.push({
    name: `pack ${label}`,
    what: `${what}; both build the DAG and write a CAR file (cairn's in DFS order, its piece CID computed from the same bytes as it writes; ipfs-car computes none)`,
    input: given,
    cairn: packCommand(BIN, 'cairn pack', join(work, 'cairn-pack.car')),
    peer: ipfsCar
  })

  // --against DIR: this tree's add and pack beside another build of cairn (a checkout with its dist/ built), A/B in one run
  const against = ctx.opt('--against')
  if (against !== undefined) {
    const other = join(resolve(against), 'bin', 'cairn.js')
    pairs.push({
      name: `add ${label}, this tree vs --against`,
      what: `${what}; the ratio is this tree ÷ the other build`,
      input: given,
      cairn: addCommand(join(work, 'add-repo'), input, size, stored),
      peer: addCommand(join(work, 'add-against-repo'), input, size, stored, [], `cairn add (${against})`, other)
    }, {
      name: `pack ${label}, this tree vs --against`,
      what: `${what}; the ratio is this tree ÷ the other build`,
      input: given,
      cairn: packCommand(BIN, 'cairn pack', join(work, 'cairn-pack.car')),
      peer: packCommand(other, `cairn pack (${against})`, join(work, 'cairn-pack-against.car'))
    })
  }
  return pairs
}
