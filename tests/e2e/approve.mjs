// Drives headless Chromium through the dashboard, as a person would: opens the runs page and a
// waiting run, approves it in the inbox (another tab), and watches the run's page, never
// reloaded, show the run completed; then writes a screenshot of that page.
//
// Usage: node approve.mjs BASE_URL RUN_ID SCREENSHOT_PATH   (CHROMIUM: the browser, default
// /usr/bin/chromium). Exit status 0 when every step held.
import { chromium } from 'playwright-core';

const [base, runId, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext();
  const runs = await context.newPage();
  await runs.goto(`${base}/?status=waiting`);
  await runs.click(`a:text-is("${runId}")`);
  await runs.waitForSelector('#status');
  const before = await runs.textContent('#status');
  if (before !== 'waiting') throw new Error(`the run page says ${before}, not waiting`);
  // A mark that a reload would wipe out.
  await runs.evaluate(() => { window.__notReloaded = true; });

  const inbox = await context.newPage();
  await inbox.goto(`${base}/inbox`);
  const form = inbox.locator(`li:has(a:text-is("${runId}")) form[data-signal="decision"]`);
  await form.locator('select[name="value"]').selectOption('Approve');
  await Promise.all([inbox.waitForNavigation(), form.locator('button').click()]);

  await runs.waitForFunction(
    () => document.getElementById('status').textContent === 'completed', null, { timeout: 30000 });
  if (!(await runs.evaluate(() => window.__notReloaded === true))) {
    throw new Error('the run page was reloaded');
  }
  const decide = await runs.textContent('[data-outcome="decide"]');
  if (decide !== 'completed') throw new Error(`step decide shows ${decide}`);
  await runs.screenshot({ path: screenshot, fullPage: true });
  console.log('approved; the run page shows it completed without a reload');
} finally {
  await browser.close();
}
