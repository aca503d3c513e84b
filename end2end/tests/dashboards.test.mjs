// Dashboards in a real browser, on the demo data (`modelwatch demo`): the overview lists the
// models with sparklines; a model dashboard draws SVG charts with data; switching the range
// changes the URL and the step; hovering shows a readout; chart and breakdown links open the
// logs filtered to that slice; without JavaScript the charts are still there.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startBrowser, newPage, login, waitForHydration, ADMIN_PASSWORD } from './harness.mjs';

let server;
let browser;
before(async () => {
  server = await startServer({ args: ['demo', '--days', '1', '--no-live'] });
  browser = await startBrowser();
});
after(async () => { await browser?.close(); await server?.stop(); });

// The demo writes its history in the background after the server starts.
async function waitForDemoData(page) {
  for (let i = 0; i < 120; i++) {
    await page.goto(`${server.base}/`);
    const row = await page.$('[data-testid=model-list] tr[data-model="gpt-4o"]');
    if (row && server.log().includes('demo history written')) return;
    await page.waitForTimeout(500);
  }
  throw new Error(`demo data did not appear:\n${server.log()}`);
}

test('overview, dashboard, range switch, hover and links (JavaScript on)', async () => {
  const page = await newPage(browser);
  await login(page, server.base, 'admin', ADMIN_PASSWORD);
  await waitForDemoData(page);
  await page.goto(`${server.base}/`);
  await waitForHydration(page);
  const rows = await page.$$eval('[data-testid=model-list] tbody tr', (trs) => trs.map((t) => t.dataset.model));
  assert.deepEqual(rows.sort(), ['claude-sonnet-4', 'fraud-detector', 'gpt-4o', 'llama-3-70b', 'text-embedding-3-small']);
  assert.ok(await page.$('tr[data-model="gpt-4o"] svg.sparkline polyline'), 'a sparkline is drawn');

  await page.click('tr[data-model="gpt-4o"] a');
  await page.waitForSelector('[data-testid=model-title]');
  assert.match(page.url(), /\/models\/gpt-4o/);
  const requests = '[data-panel=requests] .chart';
  assert.equal(await page.getAttribute(requests, 'data-has-data'), 'true');
  assert.ok(await page.$(`${requests} svg polygon`), 'the requests chart has a data path');
  assert.ok((await page.$$('[data-testid=panels] .panel')).length >= 8, 'all KPI panels');
  assert.match(await page.textContent('[data-testid=headline]'), /Requests/);
  assert.match(await page.textContent('[data-testid=range-label]'), /5m steps/);

  // Switch to 7 days: the URL keeps the range and the step becomes hourly.
  await page.click('a[data-range="7d"]');
  await page.waitForFunction(() => document.querySelector('[data-testid=range-label]')?.textContent.includes('1h steps'));
  assert.match(page.url(), /range=7d/);
  assert.ok(await page.$(`${requests} svg polygon`));

  // Hover shows the readout of the nearest point.
  const box = await page.locator('[data-panel=latency] .hover').boundingBox();
  await page.mouse.move(box.x + box.width * 0.93, box.y + box.height / 2);
  await page.waitForFunction(() => /p95: \d/.test(document.querySelector('[data-panel=latency] .readout')?.textContent ?? ''));

  // A breakdown row opens the logs filtered to that slice.
  await page.click('[data-testid=breakdown-table] a >> text=openai');
  await page.waitForSelector('[data-testid=log-filter]');
  assert.match(page.url(), /\/models\/gpt-4o\/logs\?from=\d+&to=\d+&provider=openai/);
  assert.match(await page.textContent('[data-testid=active-filters]'), /provider = openai/);

  // A click on a chart opens the logs of that step.
  await page.goBack();
  await page.waitForSelector('[data-panel=requests] .hover');
  const rbox = await page.locator('[data-panel=requests] .hover').boundingBox();
  await page.mouse.click(rbox.x + rbox.width * 0.93, rbox.y + rbox.height / 2);
  await page.waitForURL(/\/models\/gpt-4o\/logs\?from=\d+&to=\d+$/);
  await page.waitForSelector('[data-testid=log-list]');
  assert.deepEqual(page.errors, [], 'no console errors');
});

test('log explorer: filter, histogram, pages and the detail with its conversation', async () => {
  const page = await newPage(browser);
  await login(page, server.base, 'admin', ADMIN_PASSWORD);
  await waitForDemoData(page);
  await page.goto(`${server.base}/models/gpt-4o/logs?range=24h&status=error`);
  await waitForHydration(page);
  await page.waitForSelector('[data-testid=log-list]');
  const statuses = await page.$$eval('[data-testid=log-list] tbody tr .badge', (els) => els.map((e) => e.textContent));
  assert.ok(statuses.length > 0, 'error logs are listed');
  assert.ok(statuses.every((s) => s === 'error'), `only errors: ${statuses}`);
  assert.equal(await page.getAttribute('[data-panel=histogram] .chart', 'data-has-data'), 'true');
  assert.match(await page.textContent('[data-testid=log-count]'), /\d+ matching logs/);

  // The form replaces the status filter and keeps the range.
  await page.selectOption('#f-status', 'ok');
  await Promise.all([page.waitForURL(/status=ok/), page.click('[data-testid=log-filter] button[type=submit]')]);
  assert.match(page.url(), /range=24h/);
  await page.waitForSelector('[data-testid=log-list]');
  // The GET form loaded a new page: the count button needs the hydrated page.
  await waitForHydration(page);
  // Admins can count (and then delete) the logs a search matches.
  await page.click('[data-testid=delete-logs] summary');
  await page.click('[data-testid=delete-logs] button[type=submit]');
  await page.waitForSelector('[data-testid=delete-count]');
  assert.match(await page.textContent('[data-testid=delete-count]'), /^\d+ stored logs match this search\.$/);
  // Saving the search: it is listed as a link.
  await page.fill('[data-testid=save-search] input[name=name]', 'ok calls');
  await page.click('[data-testid=save-search] button[type=submit]');
  await page.waitForSelector('[data-testid=saved-searches] [data-saved="ok calls"] a');
  assert.match(await page.getAttribute('[data-saved="ok calls"] a', 'href'), /status=ok/);
  // Older results: a second page, different rows.
  const first = await page.$$eval('[data-testid=log-list] tbody tr', (trs) => trs.map((t) => t.dataset.logId));
  await Promise.all([page.waitForURL(/before=/), page.click('[data-testid=older]')]);
  await page.waitForFunction((id) => {
    const row = document.querySelector('[data-testid=log-list] tbody tr');
    return row && row.dataset.logId !== id;
  }, first[0]);
  const second = await page.$$eval('[data-testid=log-list] tbody tr', (trs) => trs.map((t) => t.dataset.logId));
  assert.ok(second.length > 0 && second.every((id) => !first.includes(id)), 'the next page holds older logs');

  // Export: the link downloads this search as CSV.
  const csvHref = await page.getAttribute('[data-testid=export-csv]', 'href');
  const csv = await page.evaluate(async (href) => (await fetch(href)).text(), csvHref);
  assert.match(csv.split('\n')[0], /^id,time,model,provider/);
  assert.ok(csv.split('\n').length > 2, 'rows follow the header');

  // The detail of one log: its fields and the chat as a conversation.
  await Promise.all([page.waitForURL(/\/logs\/\d+$/), page.click('[data-testid=log-list] tbody tr:first-child td a')]);
  await page.waitForSelector('[data-testid=log-fields]');
  assert.equal(await page.textContent('[data-testid=log-status]'), 'ok');
  assert.match(await page.textContent('[data-testid=payload-request]'), /user/);
  assert.match(await page.textContent('[data-testid=payload-response]'), /assistant/);

  // Full text: the words of a prompt find the calls that carried it.
  await page.goto(`${server.base}/models/gpt-4o/logs?range=24h`);
  await waitForHydration(page);
  await page.fill('[data-testid=log-q]', 'includes SSO');
  await Promise.all([page.waitForURL(/q=includes/), page.click('[data-testid=log-filter] button[type=submit]')]);
  await page.waitForSelector('[data-testid=log-list]');
  // The GET form loaded a new page: click through the hydrated app.
  await waitForHydration(page);
  await Promise.all([page.waitForURL(/\/logs\/\d+$/), page.click('[data-testid=log-list] tbody tr:first-child td a')]);
  await page.waitForSelector('[data-testid=payload-request]');
  assert.match(await page.textContent('[data-testid=payload-request]'), /Which plan includes SSO\?/);
  assert.deepEqual(page.errors, [], 'no console errors');

  // The detail page loaded directly (a shared link) hydrates cleanly too.
  const detailUrl = page.url();
  const direct = await newPage(browser);
  await login(direct, server.base, 'admin', ADMIN_PASSWORD);
  await direct.goto(detailUrl);
  await waitForHydration(direct);
  assert.match(await direct.textContent('[data-testid=payload-request]'), /Which plan includes SSO\?/);
  assert.deepEqual(direct.errors, [], 'no console errors on a directly loaded detail page');
});

test('live tail shows a log sent through the API', async () => {
  const page = await newPage(browser);
  await login(page, server.base, 'admin', ADMIN_PASSWORD);
  await page.goto(`${server.base}/models/gpt-4o/logs?range=1h&status=error`);
  await waitForHydration(page);
  await page.click('[data-testid=tail-start]');
  await page.waitForFunction(() => document.querySelector('[data-testid=tail-status]')?.textContent === 'live');
  const key = await page.evaluate(async () => {
    const r = await fetch('/fn/create_api_key', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: 'name=tail&scope_ingest=on',
    });
    return r.json();
  });
  const send = (rec) => fetch(`${server.base}/api/v1/logs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify([{ model: 'gpt-4o', timestamp: Date.now(), ...rec }]),
  });
  // An ok record (filtered out) and an error record (shown).
  assert.equal((await send({ error_message: 'tail-e2e-ok' })).status, 200);
  assert.equal((await send({ status: 'error', error_type: 'timeout', error_message: 'tail-e2e-error' })).status, 200);
  await page.waitForFunction(() => document.querySelector('[data-testid=tail-list]')?.textContent.includes('tail-e2e-error'));
  assert.doesNotMatch(await page.textContent('[data-testid=tail-list]'), /tail-e2e-ok/);
  // Paused: new rows wait; resumed: they appear.
  await page.click('[data-testid=tail-pause]');
  assert.equal((await send({ status: 'error', error_message: 'tail-e2e-held' })).status, 200);
  await page.waitForFunction(() => /Resume \(1 new\)/.test(document.querySelector('[data-testid=tail-pause]')?.textContent ?? ''));
  assert.doesNotMatch(await page.textContent('[data-testid=tail-list]'), /tail-e2e-held/);
  await page.click('[data-testid=tail-pause]');
  await page.waitForFunction(() => document.querySelector('[data-testid=tail-list]')?.textContent.includes('tail-e2e-held'));
  assert.deepEqual(page.errors, [], 'no console errors');
});

test('dashboards render without JavaScript', async () => {
  const page = await newPage(browser, { javaScriptEnabled: false });
  await login(page, server.base, 'admin', ADMIN_PASSWORD);
  const resp = await page.goto(`${server.base}/models/claude-sonnet-4?range=24h&by=user`);
  assert.equal(resp.status(), 200);
  assert.equal(await page.getAttribute('[data-panel=latency] .chart', 'data-has-data'), 'true');
  assert.ok(await page.$('[data-panel=latency] svg polyline'));
  assert.match(await page.textContent('[data-testid=breakdown-table]'), /user-\d+/);
  const missing = await page.goto(`${server.base}/models/no-such-model`);
  assert.equal(missing.status(), 404);
});
