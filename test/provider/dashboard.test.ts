/**
 * The provider dashboard in a real browser: Debian's Chromium driven by
 * playwright-core loads the page from the admin listener, logs in with the
 * token from admin.json, sees a deal made by the test appear (live, without a
 * reload), and leaves a screenshot in test-artifacts/ (gitignored). Every
 * request the page makes goes to the provider's own admin listener.
 */
import test from 'ava'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { cairn, tempDir } from '../helpers/cli.js'
import { startProviderCli } from '../helpers/provider.js'

const CHROMIUM = process.env.CAIRN_CHROMIUM ?? '/usr/bin/chromium'
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url))

// as root, Chromium needs --no-sandbox; the rest keeps it off the network (no background services)
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']

/** Polls `check` (bounded) until it holds; the page's own CSP forbids evaluating strings in it. */
async function until (check: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  for (const started = Date.now(); Date.now() - started < ms;) {
    if (await check()) return
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

test('the dashboard logs in with the admin token and shows a new deal live; every asset comes from the provider', async t => {
  t.timeout(240_000)
  t.true(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (npm test's pretest step, test/prereqs.sh, does as root)`)
  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const providerRepo = join(tmp.path, 'provider')
  const clientRepo = join(tmp.path, 'client')
  t.is((await cairn(['--repo', providerRepo, 'init'])).code, 0)
  t.is((await cairn(['--repo', clientRepo, 'init'])).code, 0)
  const provider = await startProviderCli(providerRepo)
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true, timeout: 60_000 })
  try {
    const { url: adminUrl, token } = JSON.parse(await readFile(join(providerRepo, 'admin.json'), 'utf8')) as { url: string, token: string }
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
    const requested: string[] = []
    page.on('request', (r) => { requested.push(r.url()) })

    // without the token the data stays closed
    t.is((await fetch(`${adminUrl}/admin/v1/dashboard`)).status, 401)
    await page.goto(`${adminUrl}/`, { waitUntil: 'load' })
    t.is(new URL(page.url()).pathname, '/dashboard/')
    await page.fill('#token', 'wrong-token')
    await page.click('#login button[type=submit]')
    await until(async () => (await page.textContent('#login-error') ?? '') !== '', 'the login error')
    t.true(await page.isHidden('#board'))

    await page.fill('#token', token)
    await page.click('#login button[type=submit]')
    await page.waitForSelector('#board', { state: 'visible' })
    await until(async () => (await page.textContent('#capacity-text') ?? '').includes('free of'), 'the capacity')
    t.is(await page.locator('#deals tbody tr').count(), 0)

    // a deal made now appears on the open page
    const file = join(tmp.path, 'data.bin')
    await writeFile(file, randomBytes(500_000))
    const added = await cairn(['--repo', clientRepo, '--json', 'add', file])
    const { root } = JSON.parse(added.stdout) as { root: string }
    const dealt = await cairn(['--repo', clientRepo, '--json', 'deal', root, '--provider', provider.url, '--duration', '2d'])
    t.is(dealt.code, 0, `${dealt.stderr}\n${dealt.stdout}\n${provider.log()}`)
    const deal = JSON.parse(dealt.stdout.trim().split('\n').at(-1) as string) as { id: string }
    const row = page.locator(`#deals tbody tr[data-deal="${deal.id}"]`)
    await row.waitFor({ state: 'visible', timeout: 30_000 })
    // a poll may have caught the deal accepted, before its upload; the next ones show it active
    await until(async () => /\tactive\t/.test(await row.innerText()), 'the deal shown active')
    await until(async () => !/^0 B used/.test(await page.textContent('#capacity-text') ?? ''), 'capacity in use')

    // a retrieval and a proof show too
    const got = await cairn(['get', root, '--provider', provider.url, '-o', join(tmp.path, 'got.bin')])
    t.is(got.code, 0, got.stderr)
    await until(async () => Number(await page.textContent('#retrievals')) >= 1, 'a retrieval')

    const audited = await cairn(['--repo', clientRepo, 'audit', deal.id])
    t.is(audited.code, 0, audited.stderr)
    await until(async () => await page.locator('#proofs tbody tr').count() >= 1, 'a proof')
    t.regex(await page.locator('#proofs tbody tr').first().innerText(), /answered\s+\d+ ms/)

    await mkdir(ARTIFACTS, { recursive: true })
    const shot = join(ARTIFACTS, 'dashboard.png')
    await page.screenshot({ path: shot, fullPage: true })
    t.true((await readFile(shot)).length > 10_000)
    t.log(`screenshot: ${shot}`)

    const origin = new URL(adminUrl).origin
    const foreign = requested.filter(u => new URL(u).origin !== origin)
    t.deepEqual(foreign, [], 'no CDN or other host')
    t.true(requested.some(u => u.endsWith('/dashboard/app.js')))
    t.true(requested.some(u => u.endsWith('/dashboard/style.css')))
  } finally {
    await browser.close()
    t.is(await provider.stop(), 0)
  }
})
