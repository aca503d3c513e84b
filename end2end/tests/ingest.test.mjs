// The write path's admin pages in a real browser: an admin creates an API key (shown once),
// uses it to send a record over HTTP, adds a redaction rule and sees the price table.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startBrowser, newPage, login, waitForHydration, ADMIN_PASSWORD } from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await startBrowser(); });
after(async () => { await browser?.close(); await server?.stop(); });

test('admin creates a key, a rule, and the key ingests (JavaScript on)', async () => {
  const page = await newPage(browser);
  await login(page, server.base, 'admin', ADMIN_PASSWORD);
  await page.goto(`${server.base}/admin/keys`);
  await waitForHydration(page);
  await page.fill('[data-testid=create-key] input[name=name]', 'browser key');
  await page.check('[data-testid=create-key] input[name=scope_read]');
  await page.click('[data-testid=create-key] button[type=submit]');
  const key = (await page.textContent('[data-testid=new-key]')).trim();
  assert.match(key, /^mw_[A-Za-z0-9]{40}$/);
  await page.waitForSelector('[data-testid=api-keys] >> text=browser key');
  assert.doesNotMatch(await page.textContent('[data-testid=api-keys]'), new RegExp(key), 'the list never shows the secret');

  // A redaction rule through the form (all PII kinds are ticked by default).
  await page.goto(`${server.base}/admin/ingest`);
  await waitForHydration(page);
  assert.match(await page.textContent('[data-testid=prices]'), /gpt-4o/);
  await page.fill('[data-testid=create-rule] input[name=name]', 'strip pii');
  await page.click('[data-testid=create-rule] button[type=submit]');
  await page.waitForSelector('[data-testid=rules] >> text=strip pii');

  // The key works for ingest, and the rule applies.
  const resp = await fetch(`${server.base}/api/v1/logs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify([{ model: 'browser-model', trace_id: 'b1', request: 'write to bob@example.com' }]),
  });
  assert.equal(resp.status, 200);
  assert.equal((await resp.json()).accepted, 1);
  const logs = await (await fetch(`${server.base}/api/v1/logs?model=browser-model&payloads=true`, {
    headers: { authorization: `Bearer ${key}` },
  })).json();
  assert.equal(logs.logs[0].request, 'write to [EMAIL]');
  assert.deepEqual(page.errors, [], 'no console errors');
});

test('the admin pages render without JavaScript', async () => {
  const page = await newPage(browser, { javaScriptEnabled: false });
  await login(page, server.base, 'admin', ADMIN_PASSWORD);
  const resp = await page.goto(`${server.base}/admin/ingest`);
  assert.equal(resp.status(), 200);
  assert.match(await page.textContent('[data-testid=prices]'), /claude-sonnet-4\*/);
  await page.goto(`${server.base}/admin/keys`);
  assert.match(await page.textContent('body'), /browser key/);
});
