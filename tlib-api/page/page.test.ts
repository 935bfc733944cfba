/**
 * The agent page in headless Debian chromium, against a real gateway, NATS and the contract
 * responder standing in for signaling (the full run with real signaling and audio is a platform test).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBinary } from '../../common/supervisor/child.js';
import { startTlibHarness, waitUntil, type TlibHarness } from '../../test/tlib/harness.js';

let h: TlibHarness;
let browser: BrowserContext;
let page: Page;
let profile: string;

beforeAll(async () => {
  h = await startTlibHarness();
  profile = mkdtempSync(path.join(os.tmpdir(), 'huddle-chromium-'));
  // A fresh profile per run (Playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: findBinary('chromium', 'chromium'),
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = await browser.newPage();
  page.setDefaultTimeout(15_000);
});

afterAll(async () => {
  await browser?.close();
  await h?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

describe('agent page', () => {
  it('refuses a wrong token and says so', async () => {
    await page.goto(`${h.gateway.url}/`);
    await page.getByLabel('Token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toMatch(/Sign-in failed/);
  });

  it('shows the conference parties from LCTParty and listen-disconnects / reconnects a party', async () => {
    const call = h.signaling.addCall([
      { DN: '7001', location: 'SiteA' },
      { DN: '7002', location: 'SiteA', listenDisconnected: true },
      { DN: '7003', location: 'SiteB' },
    ]);
    await page.goto(`${h.gateway.url}/`);
    await page.getByLabel('Token').fill('agent-7001-secret');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByLabel('Your DN').fill('7001');
    await page.getByRole('button', { name: 'Register' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toBe('Registered 7001');

    // The state that came with the registration: party 7002 is already listen-disconnected.
    await expect.poll(() => page.locator('#call-summary').textContent()).toContain(call.connID);
    const parties = page.getByRole('list', { name: 'Parties' });
    await expect.poll(() => parties.getByRole('listitem').count()).toBe(3);
    expect(await parties.locator('li[data-dn="7002"]').textContent()).toContain('Listen-disconnected');
    expect(await parties.locator('li[data-dn="7003"]').textContent()).toContain('7003 @ SiteB');

    await page.getByRole('button', { name: 'Listen-disconnect 7003' }).click();
    await waitUntil(() => h.signaling.requests.some((r) => r.request.request === 'ListenDisconnect' && r.request.OtherDN === '7003'), 'ListenDisconnect sent');
    const sent = h.signaling.requests.find((r) => r.request.request === 'ListenDisconnect');
    expect(sent?.request).toMatchObject({ ThisDN: '7001', OtherDN: '7003', ConnID: call.connID });
    await expect.poll(() => parties.locator('li[data-dn="7003"]').textContent()).toContain('Listen-disconnected');
    expect(await parties.locator('li[data-dn="7003"]').getAttribute('class')).toBe('disconnected');
    await expect.poll(() => page.getByRole('list').last().textContent()).toContain('EventListenDisconnected');

    await page.getByRole('button', { name: 'Reconnect 7003' }).click();
    await expect.poll(() => parties.locator('li[data-dn="7003"]').textContent()).toContain('In the conversation');

    await page.getByRole('button', { name: 'Release call' }).click();
    await expect.poll(() => page.locator('#call-summary').textContent()).toBe('No call');
  });

  it('makes a call and conferences a party from the page', async () => {
    await page.getByLabel('Number to call').fill('7004');
    await page.getByRole('button', { name: 'Make call' }).click();
    await waitUntil(() => h.signaling.requests.some((r) => r.request.request === 'MakeCall' && r.request.OtherDN === '7004'), 'MakeCall sent');
    await expect.poll(() => page.locator('#call-summary').textContent()).toMatch(/Dialing/);
    await page.getByLabel('Party to conference').fill('7005');
    await page.getByRole('button', { name: 'Single-step conference' }).click();
    await waitUntil(() => h.signaling.requests.some((r) => r.request.request === 'SingleStepConference' && r.request.OtherDN === '7005'), 'SingleStepConference sent');
    // The contract responder does not do conferences: the page shows signaling's EventError.
    await expect.poll(() => page.getByRole('status').textContent()).toMatch(/SingleStepConference failed/);
  });
});
