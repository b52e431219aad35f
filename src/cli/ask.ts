/** `cairn ask <url>`: a provider's signed ask, verified (signature and did). */
import { CairnError } from '../errors.js'
import { ProviderClient } from '../client/provider-client.js'
import { Output, type GlobalOptions } from './output.js'
import { describeAsk } from './providers.js'
import { askJSON } from './views.js'

export default async function ask (args: string[], options: GlobalOptions): Promise<void> {
  const url = args[0]
  if (url === undefined) throw new CairnError('ERR_USAGE', 'expected the provider URL, e.g. cairn ask http://127.0.0.1:7470')
  const out = new Output(options)
  const client = new ProviderClient(url)
  const signed = await client.ask()
  out.result({ url: client.url, ask: askJSON(signed.payload), signer: signed.signer, signature: signed.signature },
    () => out.quiet ? signed.payload.provider : describeAsk({ url: client.url, ask: signed }))
}
