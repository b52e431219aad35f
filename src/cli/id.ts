import { Repo, resolveRepoPath } from '../repo/repo.js'
import { Output, type GlobalOptions } from './output.js'

export default async function id (_args: string[], options: GlobalOptions): Promise<void> {
  const out = new Output(options)
  const repo = await Repo.open(resolveRepoPath(options.repo))
  const roles = ['client', 'provider']
  out.result({ did: repo.identity.did, repo: repo.path, roles }, () => out.quiet ? repo.identity.did : `did   ${repo.identity.did}\nrepo  ${repo.path}\nroles ${roles.join(', ')}`)
}
