// Findings of the security probe, in a real browser: markup in a URL path, a model's display
// name and an alert rule's name and description stays text (no element, no redirect), and a
// page on another port of the same host cannot make the signed-in browser change anything.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startServer, startBrowser, newPage, login, ADMIN_PASSWORD } from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await startBrowser(); });
after(async () => { await browser?.close(); await server?.stop(); });

const PAYLOAD = '</title></textarea><img src=x id=injected><meta http-equiv="refresh" content="0;url=http://evil.example/">';

// Nothing the payload would add exists, the browser stayed on the page, and the title holds
// the payload as text.
async function assertInert(page, url, titlePart) {
  await page.waitForTimeout(1500);
  assert.equal(page.url(), url, 'the browser was not moved away');
  assert.equal(await page.locator('#injected').count(), 0, 'an injected element exists');
  assert.equal(await page.locator('meta[http-equiv]').count(), 0, 'an injected meta refresh exists');
  assert.ok((await page.title()).includes(titlePart), `title ${await page.title()}`);
}

test('markup in paths, model names and alert rules stays text', async () => {
  const page = await newPage(browser);
  await login(page, server.base, 'admin', ADMIN_PASSWORD);
  const headers = { origin: server.base };

  // Reflected: the model name in the path of the logs page.
  const reflected = `${server.base}/models/${encodeURIComponent(PAYLOAD)}/logs`;
  await page.goto(reflected);
  await assertInert(page, reflected, '</title>');

  // Stored: a model's display name (its dashboard's title).
  let r = await page.request.post(`${server.base}/fn/create_model`, { headers, form: { name: 'inject-m' } });
  assert.equal(r.status(), 200, await r.text());
  r = await page.request.post(`${server.base}/fn/update_model`, { headers, form: { name: 'inject-m', display_name: PAYLOAD, description: '' } });
  assert.equal(r.status(), 200, await r.text());
  const dashboard = `${server.base}/models/inject-m`;
  await page.goto(dashboard);
  await assertInert(page, dashboard, '</title>');

  // Stored: an alert rule's name (title) and description (a textarea).
  const rule = {
    id: 0, name: PAYLOAD, description: PAYLOAD, enabled: true, kind: 'threshold', models: ['inject-m'], metric: 'latency_p95',
    window_secs: 600, comparison: '>', warning: 800.0, critical: 2000.0, for_secs: 120, min_requests: 20, no_data: 'keep',
    sensitivity: 3.0, seasonality: 'day', channels: [], repeat_secs: 3600,
  };
  r = await page.request.post(`${server.base}/api/v1/alerts/rules`, { headers, data: rule });
  assert.equal(r.status(), 201, await r.text());
  const { id } = await r.json();
  const rulePage = `${server.base}/alerts/rules/${id}`;
  await page.goto(rulePage);
  await assertInert(page, rulePage, '</title>');
  assert.equal(await page.inputValue('textarea[name="rule[description]"]'), PAYLOAD, 'the description is the textarea\'s text');
  assert.deepEqual(page.errors.filter((e) => !e.includes('404')), [], 'no console errors');
});

test('a page on another port cannot post with the session cookie', async () => {
  const page = await newPage(browser);
  await login(page, server.base, 'admin', ADMIN_PASSWORD);
  // The attacker's page: same host, another port (SameSite counts it as the same site).
  const evil = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html>
      <form id=f method=post action="${server.base}/fn/create_model" enctype="text/plain">
        <input name="name" value="csrf-model">
      </form><script>document.getElementById('f').submit()</script>`);
  });
  await new Promise((r) => evil.listen(0, '127.0.0.1', r));
  try {
    const answer = page.waitForResponse((resp) => resp.url().endsWith('/fn/create_model'));
    await page.goto(`http://127.0.0.1:${evil.address().port}/`);
    assert.equal((await answer).status(), 403, 'the forged post was refused');
    const models = await page.request.get(`${server.base}/api/v1/models`);
    const names = (await models.json()).map((m) => m.name);
    assert.ok(!names.includes('csrf-model'), `a model was created: ${names}`);
    // The same form from our own origin works (the check is not refusing everything).
    const ok = await page.request.post(`${server.base}/fn/create_model`, { headers: { origin: server.base }, form: { name: 'own-model' } });
    assert.equal(ok.status(), 200);
  } finally {
    evil.close();
  }
});
