/**
 * The agent page in headless Debian chromium against a whole real site: an agent signs in on the
 * page, builds a three-party conference of registered SIP test phones from it, listen-disconnects
 * a party and reconnects it; the page shows it and the party's phone proves it (music and no
 * conference tone, then both others again).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBinary } from '../../common/supervisor/child.js';
import { exactly, Site, type Agent } from './site.js';

let site: Site;
let a: Agent;
let b: Agent;
let c: Agent;
let browser: BrowserContext;
let page: Page;
let profile: string;

beforeAll(async () => {
  site = await Site.start();
  a = await site.agent('7001', 0);
  b = await site.agent('7002', 1);
  c = await site.agent('7003', 2);
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
  page.setDefaultTimeout(20_000);
});

afterAll(async () => {
  await browser?.close();
  await site?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/** Waits (generously: a loaded machine) until what the page shows satisfies the matcher. */
const poll = <T>(read: () => Promise<T>) => expect.poll(read, { timeout: 20_000, interval: 100 });
const status = () => page.getByRole('status').textContent();
const summary = () => page.locator('#call-summary').textContent();
const party = (dn: string) => page.getByRole('list', { name: 'Parties' }).locator(`li[data-dn="${dn}"]`);

describe('agent page on the real platform', () => {
  it('refuses a wrong token and says so', async () => {
    await page.goto(`${site.gatewayHttpUrl}/`);
    await page.getByLabel('Token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await poll(status).toMatch(/Sign-in failed/);
  });

  it('signs in with its token, registers its DN and builds a conference of three phones', async () => {
    await page.goto(`${site.gatewayHttpUrl}/`);
    await page.getByLabel('Token').fill('agent-7001-secret');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByLabel('Your DN').fill('7001');
    await page.getByRole('button', { name: 'Register' }).click();
    await poll(status).toBe('Registered 7001');

    // MakeCall rings 7001's own phone first, then 7002; both phones answer.
    await page.getByLabel('Number to call').fill('7002');
    await page.getByRole('button', { name: 'Make call' }).click();
    await poll(summary).toMatch(/^Call [0-9a-f]{16}: Established$/);
    await page.getByLabel('Party to conference').fill('7003');
    await page.getByRole('button', { name: 'Single-step conference' }).click();
    await poll(() => page.getByRole('list', { name: 'Parties' }).getByRole('listitem').count()).toBe(3);
    for (const dn of ['7001', '7002', '7003']) await poll(() => party(dn).textContent()).toContain(`${dn} @ SiteA`);
    expect(await party('7001').textContent()).toContain('(you)');
    await c.hears(exactly([a.tone, b.tone]));
    await a.hears(exactly([b.tone, c.tone]));
  });

  it('listen-disconnects a party: the page marks it, its phone hears music and no conference tone', async () => {
    await page.getByRole('button', { name: 'Listen-disconnect 7003' }).click();
    await poll(() => party('7003').textContent()).toContain('Listen-disconnected');
    expect(await party('7003').getAttribute('class')).toBe('disconnected');
    expect(await party('7002').textContent()).toContain('In the conversation');
    await poll(() => page.getByRole('list').last().textContent()).toContain('EventListenDisconnected');
    await c.hears(exactly([], true));
    await a.hears(exactly([b.tone]));
    await b.hears(exactly([a.tone]));
  });

  it('a reloaded page registers again and shows the call as it is, the party still listen-disconnected', async () => {
    await page.reload();
    await page.getByLabel('Token').fill('agent-7001-secret');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByLabel('Your DN').fill('7001');
    await page.getByRole('button', { name: 'Register' }).click();
    await poll(status).toBe('Registered 7001');
    await poll(summary).toMatch(/^Call [0-9a-f]{16}: /);
    await poll(() => page.getByRole('list', { name: 'Parties' }).getByRole('listitem').count()).toBe(3);
    await poll(() => party('7003').textContent()).toContain('Listen-disconnected');
    expect(await party('7002').textContent()).toContain('In the conversation');
  });

  it('reconnects the party from the page: it hears both others again', async () => {
    await page.getByRole('button', { name: 'Reconnect 7003' }).click();
    await poll(() => party('7003').textContent()).toContain('In the conversation');
    expect(await party('7003').getAttribute('class')).toBeNull();
    await c.hears(exactly([a.tone, b.tone]));
    await b.hears(exactly([a.tone, c.tone]));
  });

  it('releases its call from the page; the two others stay together', async () => {
    await page.getByRole('button', { name: 'Release call' }).click();
    await poll(summary).toBe('No call');
    await b.hears(exactly([c.tone]));
    await c.hears(exactly([b.tone]));
  });
});
