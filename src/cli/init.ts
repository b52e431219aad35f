import { Repo, resolveRepoPath } from '../repo/repo.js'
import { Output, type GlobalOptions } from './output.js'

export default async function init (_args: string[], options: GlobalOptions): Promise<void> {
  const out = new Output(options)
  const repo = await Repo.init(resolveRepoPath(options.repo))
  out.result({ did: repo.identity.did, repo: repo.path }, () => out.quiet ? repo.identity.did : `initialized cairn repo at ${repo.path}\nidentity ${repo.identity.did}`)
}
