// Alerting in a real browser: an admin adds a signed webhook channel and sends a test
// notification, creates a rule with its preview visible, and sees it fire (alerts page,
// overview badge, webhook received) after breaching data is ingested.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startServer, startBrowser, newPage, login, waitForHydration, ADMIN_PASSWORD } from './harness.mjs';

let server;
let browser;
let hook;
const received = [];

before(async () => {
  // The webhook receiver is on loopback, which channels may reach only when allowed.
  server = await startServer({ env: { MODELWATCH_ALERT_INTERVAL_SECS: '1', MODELWATCH_ALLOW_PRIVATE_TARGETS: '127.0.0.1/32' } });
  browser = await startBrowser();
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      received.push({ headers: req.headers, body: JSON.parse(body) });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise((r) => hook.listen(0, '127.0.0.1', r));
});
after(async () => { await browser?.close(); await server?.stop(); hook?.close(); });

async function waitFor(what, check, ms = 20_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('create a channel, send a test, create a rule with preview, see it fire', async () => {
  const page = await newPage(browser);
  await login(page, server.base, 'admin', ADMIN_PASSWORD);
  const hookUrl = `http://127.0.0.1:${hook.address().port}/hook`;

  // A webhook channel; its signing secret is shown once.
  await page.goto(`${server.base}/alerts/channels`);
  await waitForHydration(page);
  await page.fill('[data-testid=create-channel] input[name=name]', 'e2e hook');
  await page.selectOption('[data-testid=create-channel] select[name=kind]', 'webhook');
  await page.fill('[data-testid=create-channel] input[name=url]', hookUrl);
  await page.click('[data-testid=create-channel] button[type=submit]');
  await page.waitForSelector('[data-testid=webhook-secret]');
  assert.match(await page.textContent('[data-testid=webhook-secret]'), /^whsec_/);

  // Send test: it reaches the receiver, signed, and the log shows it delivered.
  await page.waitForSelector('[data-testid=channel] [data-testid=send-test]');
  await page.click('[data-testid=channel] [data-testid=send-test]');
  await waitFor('the test notification', () => received.some((r) => r.body.type === 'alert.test'));
  const test = received.find((r) => r.body.type === 'alert.test');
  assert.ok(test.headers['webhook-id'] && test.headers['webhook-timestamp'] && /^v1,/.test(test.headers['webhook-signature']));
  await waitFor('the delivered row', async () => {
    await page.goto(`${server.base}/alerts/channels`);
    return (await page.$$('[data-testid=notification][data-status=delivered]')).length === 1;
  });

  // A key and a first record, so the model exists.
  const key = await page.evaluate(async () => {
    const body = new URLSearchParams({ name: 'e2e', scope_ingest: 'on', scope_read: 'on' });
    const r = await fetch('/fn/create_api_key', { method: 'POST', body, headers: { accept: 'application/json' } });
    return r.json();
  });
  const ingest = async (records) => {
    const r = await fetch(`${server.base}/api/v1/logs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(records),
    });
    assert.equal(r.status, 200, await r.text());
  };
  await ingest([{ model: 'e2e-chat', environment: 'prod', latency_ms: 120 }]);

  // The rule: error rate over 1 minute, critical above 50 %, to the channel. Preview first.
  await page.goto(`${server.base}/alerts/rules/new`);
  await waitForHydration(page);
  await page.fill('[data-testid=rule-form] input[name="rule[name]"]', 'e2e errors');
  await page.fill('[data-testid=rule-form] input[name="rule[models]"]', 'e2e-chat');
  await page.fill('[data-testid=rule-form] input[name="rule[environments]"]', 'prod');
  await page.selectOption('[data-testid=rule-form] select[name="rule[metric]"]', 'error_rate');
  await page.fill('[data-testid=rule-form] input[name="rule[window_minutes]"]', '1');
  await page.fill('[data-testid=rule-form] input[name="rule[critical]"]', '50');
  await page.check('[data-testid=rule-form] input[name="rule[channels][]"]');
  await page.click('[data-testid=preview]');
  await page.waitForSelector('[data-testid=rule-preview] svg');
  assert.match(await page.textContent('[data-testid=preview-firing]'), /would not have fired/);
  await page.click('[data-testid=save-rule]');
  await page.waitForSelector('[data-testid=rule-saved]');

  // Breach: ten failed calls in prod. The rule fires within seconds.
  await ingest(Array.from({ length: 10 }, () => ({ model: 'e2e-chat', environment: 'prod', status: 'error', error_type: 'timeout' })));
  await waitFor('the firing webhook', () => received.some((r) => r.body.type === 'alert.firing'));
  const firing = received.find((r) => r.body.type === 'alert.firing').body;
  assert.equal(firing.rule.name, 'e2e errors');
  assert.equal(firing.alerts[0].model, 'e2e-chat');
  assert.equal(firing.alerts[0].severity, 'critical');
  assert.match(firing.rule.condition, /environment prod/);

  await page.goto(`${server.base}/alerts`);
  await page.waitForSelector('[data-testid=firing] [data-testid=alert-state]');
  const row = await page.textContent('[data-testid=firing] [data-testid=alert-state]');
  assert.match(row, /firing critical/);
  assert.match(row, /e2e-chat/);
  await page.goto(`${server.base}/`);
  assert.match(await page.textContent('tr[data-model="e2e-chat"] [data-testid=firing-badge]'), /1 firing/);
  assert.deepEqual(page.errors, [], 'no console errors');
});
