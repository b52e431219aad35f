import { repoAgeIdentity } from '../crypto/keys.js'
import { Repo, resolveRepoPath } from '../repo/repo.js'
import { Output, type GlobalOptions } from './output.js'

interface IdOptions extends GlobalOptions {
  /** print the age identity instead, for the `age` command */
  ageIdentity?: boolean
}

export default async function id (_args: string[], options: IdOptions): Promise<void> {
  const out = new Output(options)
  const repo = await Repo.open(resolveRepoPath(options.repo))
  const age = await repoAgeIdentity(repo.path)
  if (options.ageIdentity === true) {
    // the file as age-keygen writes it: `age -d -i FILE` reads it as is
    out.result({ ageIdentity: age.identity, ageRecipient: age.recipient }, () => age.file)
    return
  }
  const roles = ['client', 'provider']
  out.result({ did: repo.identity.did, ageRecipient: age.recipient, repo: repo.path, roles }, () => out.quiet
    ? repo.identity.did
    : `did   ${repo.identity.did}\nage   ${age.recipient}\nrepo  ${repo.path}\nroles ${roles.join(', ')}`)
}
