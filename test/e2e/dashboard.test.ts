/**
 * /dashboard in a real browser: Debian's Chromium, driven by playwright-core.
 * A node with tokens and a Redis L2; the test signs in through the page's
 * form, drives traffic, and checks that the page's numbers move and agree
 * with /v1/stats. A screenshot goes to test/artifacts/dashboard.png.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startTestNode, until } from '../helpers/node.js';
import { RedisServer } from '../helpers/redis.js';

type Node = Awaited<ReturnType<typeof startTestNode>>;
const TOKEN = 'dashboard-token-0123456789';
const CHROMIUM = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((path) => existsSync(path));
const ARTIFACTS = join(ROOT, 'test', 'artifacts');

let redis: RedisServer;
let node: Node;
let browser: Browser;
/** Problems the page reported: script errors, CSP violations, failed requests other than the ones a test causes. */
const pageProblems: string[] = [];

beforeAll(async () => {
  if (CHROMIUM === undefined) throw new Error('Chromium is not installed (apt-get install chromium; .ci/run does)');
  redis = await RedisServer.start();
  node = await startTestNode({ shards: 2, fronts: 1, tokens: [TOKEN], redisUrl: redis.url });
  // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await node?.close();
  await redis?.stop();
});

const auth = { authorization: `Bearer ${TOKEN}` };
async function stats(url = node.url): Promise<StatsJson> {
  const res = await fetch(`${url}/v1/stats`, { headers: auth });
  expect(res.status).toBe(200);
  return (await res.json()) as StatsJson;
}
interface StatsJson {
  node: { id: string; startedMs: number };
  requestsTotal: number;
  levels: { L1: { items: number; hitRate: number; gets: number; hits: number }; L2: { hitRate: number } };
  l2: { up: boolean; bus: { gaps: number; delay: { count: number } } };
  shards: { eventLoopUtilization: number }[];
}

/** The raw value behind one of the page's numbers (data-value), or null before the first snapshot. */
async function shown(page: Page, name: string): Promise<string | null> {
  return page.locator(`[data-stat="${name}"]`).getAttribute('data-value');
}
const shownNumber = async (page: Page, name: string) => Number(await shown(page, name));

async function openPage(url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1500 } });
  page.on('pageerror', (err) => pageProblems.push(`page error: ${err.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().includes('Failed to load resource')) pageProblems.push(`console: ${message.text()}`);
  });
  await page.goto(`${url}/dashboard`);
  return page;
}

describe('/dashboard guarded by the tokens', () => {
  it('without a token: a browser gets the sign-in form (401), other clients the JSON error, and no data either way', async () => {
    const html = await fetch(`${node.url}/dashboard`, { headers: { accept: 'text/html' } });
    expect(html.status).toBe(401);
    expect(html.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const form = await html.text();
    expect(form).toContain('action="/dashboard/sign-in"');
    expect(form).not.toContain('uPlot');
    const json = await fetch(`${node.url}/dashboard`);
    expect(json.status).toBe(401);
    expect(((await json.json()) as { error: { code: string } }).error.code).toBe('E_UNAUTHORIZED');
    // A cookie with a wrong token opens neither the page nor the stats.
    // A cookie with a wrong value, or with the token itself (the cookie carries a value derived from it), opens neither.
    for (const cookie of ['strata_session=wrong-value-0123456789', `strata_session=${TOKEN}`]) {
      expect((await fetch(`${node.url}/dashboard`, { headers: { cookie } })).status).toBe(401);
      expect((await fetch(`${node.url}/v1/stats`, { headers: { cookie } })).status).toBe(401);
    }
    // A bearer token opens the page, with a policy that allows its own inline scripts only.
    const page = await fetch(`${node.url}/dashboard`, { headers: auth });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'sha256-[^']+' 'sha256-[^']+';/);
    expect(await page.text()).toContain('uPlot');
  });

  it('a wrong token in the form is refused and sets no cookie', async () => {
    const res = await fetch(`${node.url}/dashboard/sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'token=not-the-token-000',
      redirect: 'manual',
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('set-cookie')).toBeNull();
    expect(await res.text()).toContain('not one of this node');
  });
});

describe('/dashboard in Chromium', () => {
  let page: Page;

  it('signs in through the form, then shows the node live', async () => {
    page = await openPage(node.url);
    await page.fill('input[name="token"]', TOKEN);
    await Promise.all([page.waitForURL(`${node.url}/dashboard`), page.click('button[type="submit"]')]);
    await page.locator('#status[data-state="live"]').waitFor({ timeout: 10_000 });
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'strata_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    // Browsers send it to every port of the host: it must not be the token that writes.
    expect(session?.value).not.toContain(TOKEN);
    expect((await fetch(`${node.url}/v1/keys/x`, { method: 'PUT', body: 'v', headers: { cookie: `strata_session=${session?.value}` } })).status).toBe(401);
    expect((await fetch(`${node.url}/metrics`, { headers: { cookie: `strata_session=${session?.value}` } })).status).toBe(401);
    expect(await page.locator('[data-stat="nodeId"]').getAttribute('data-value')).toBe((await stats()).node.id);
    expect(await shown(page, 'l2State')).toBe('up');
    expect(await page.locator('#shards tbody tr').count()).toBe(2);
  });

  it('the numbers move with traffic and agree with /v1/stats', async () => {
    const before = await stats();
    const itemsBefore = await shownNumber(page, 'l1Items');
    expect(itemsBefore).toBe(before.levels.L1.items);
    const keys = Array.from({ length: 300 }, (_, i) => `dash:${i}`);
    // Traffic over a few seconds, so that the page samples it while it runs: PUTs, GET hits, GET misses.
    const started = Date.now();
    let rateSeen = 0;
    for (let round = 0; Date.now() - started < 3500 || round < 3; round++) {
      await Promise.all(
        keys.map((key) =>
          round === 0
            ? fetch(`${node.url}/v1/keys/${key}`, { method: 'PUT', headers: auth, body: `value of ${key}` }).then((r) => r.arrayBuffer())
            : fetch(`${node.url}/v1/keys/${round % 2 === 0 ? key : `${key}:absent`}`).then((r) => r.arrayBuffer()),
        ),
      );
      rateSeen = Math.max(rateSeen, await shownNumber(page, 'requestsPerSecond'));
    }
    expect(rateSeen).toBeGreaterThan(0);
    // Idle now: the page's next snapshots have all of it (only its own polls of /v1/stats still count as requests).
    const sent = (await stats()).requestsTotal;
    await until(async () => (await shownNumber(page, 'requestsTotal')) >= sent, 10_000, 100);
    await until(async () => (await shownNumber(page, 'l1Items')) === 300 + itemsBefore, 10_000, 100);
    const after = await stats();
    expect(await shownNumber(page, 'requestsTotal')).toBeLessThanOrEqual(after.requestsTotal);
    expect(await shownNumber(page, 'l1Items')).toBe(after.levels.L1.items);
    expect(await shownNumber(page, 'l1HitRate')).toBeCloseTo(after.levels.L1.hitRate, 9);
    expect(after.levels.L1.hitRate).toBeGreaterThan(0);
    expect(await shownNumber(page, 'busGaps')).toBe(after.l2.bus.gaps);
    // Each PUT's bus message came back to this node's own subscriber, timed by one clock.
    expect(after.l2.bus.delay.count).toBeGreaterThan(0);
    expect(await page.locator('#l2 tbody').textContent()).toMatch(/bus delay p50 \/ p99 since start\D*\d/);
    // The tables follow: a latency row for GET and for PUT, and each shard's items add up to the node's.
    await expect
      .poll(() => page.locator('#latency tbody tr').allTextContents(), { timeout: 5000 })
      .toEqual(expect.arrayContaining([expect.stringMatching(/^get \(request\)/), expect.stringMatching(/^put \(request\)/)]));
    // Each shard worker reports its event-loop utilization (above 0: its own once-a-second timer runs), a share, shown in its row.
    for (const shard of after.shards) expect(shard.eventLoopUtilization).toBeGreaterThan(0);
    for (const shard of after.shards) expect(shard.eventLoopUtilization).toBeLessThanOrEqual(1);
    expect(await page.locator('#shards thead').textContent()).toContain('event loop');
    const shardItems = await page.locator('#shards tbody tr td:nth-child(3)').allTextContents();
    expect(shardItems.map((t) => Number(t.replaceAll(',', ''))).reduce((a, b) => a + b, 0)).toBe(after.levels.L1.items);
    // Every chart drew (uPlot renders into a canvas per chart).
    expect(await page.locator('.chart canvas').count()).toBe(6);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
  }, 30_000);

  it('hot keys are listed for the signed-in page', async () => {
    const hot = 'dash:hot-key';
    await fetch(`${node.url}/v1/keys/${hot}`, { method: 'PUT', headers: auth, body: 'hot' });
    for (let i = 0; i < 20; i++) await Promise.all(Array.from({ length: 50 }, () => fetch(`${node.url}/v1/keys/${hot}`).then((r) => r.arrayBuffer())));
    await expect.poll(() => page.locator('#hot-keys tbody tr td:first-child').allTextContents(), { timeout: 10_000 }).toContain(hot);
  }, 30_000);

  it('the page loaded nothing from elsewhere and broke no policy', async () => {
    expect(pageProblems).toEqual([]);
  });

  it('signing out forgets the cookie: the next load asks for the token again', async () => {
    await Promise.all([page.waitForURL(`${node.url}/dashboard`), page.click('#sign-out')]);
    expect((await page.context().cookies()).find((c) => c.name === 'strata_session')).toBeUndefined();
    expect(await page.locator('input[name="token"]').count()).toBe(1);
    await page.close();
  });

  it('when the node is gone, the page says so and keeps the last numbers, greyed', async () => {
    const other = await startTestNode({ shards: 1 });
    const orphan = await openPage(other.url);
    await orphan.locator('#status[data-state="live"]').waitFor({ timeout: 10_000 });
    const total = await shown(orphan, 'requestsTotal');
    await other.close();
    await orphan.locator('#status[data-state="down"]').waitFor({ timeout: 10_000 });
    expect(await orphan.locator('body').getAttribute('class')).toContain('stale');
    expect(await orphan.locator('#status-detail').textContent()).toMatch(/the numbers below are from/);
    expect(await shown(orphan, 'requestsTotal')).toBe(total);
  }, 30_000);
});
