// Accounts and RBAC in a real browser: an admin creates a viewer with a grant on one of two
// models; the viewer sees only that model. With JavaScript, and without it for login and
// the admin forms.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startBrowser, newPage, login, waitForHydration, ADMIN_PASSWORD } from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await startBrowser(); });
after(async () => { await browser?.close(); await server?.stop(); });

test('admin grants one of two models; the viewer sees only it (JavaScript on)', async () => {
  const page = await newPage(browser);
  await login(page, server.base, 'admin', ADMIN_PASSWORD);
  assert.match(await page.textContent('[data-testid=whoami]'), /admin/);

  // Models, created through the hydrated ActionForm (the success note only appears with JS).
  await page.goto(`${server.base}/admin/models`);
  await waitForHydration(page);
  for (const name of ['alpha-model', 'beta-model']) {
    await page.fill('[data-testid=create-model] input[name=name]', name);
    await page.click('[data-testid=create-model] button[type=submit]');
    await page.waitForSelector(`[data-testid=admin-models] >> text=${name}`);
  }
  assert.match(await page.textContent('body'), /Model created\./);

  // A viewer, then a grant on alpha only.
  await page.goto(`${server.base}/admin/users`);
  await waitForHydration(page);
  await page.fill('[data-testid=create-user] input[name=username]', 'vera');
  await page.selectOption('[data-testid=create-user] select[name=role]', 'viewer');
  await page.fill('[data-testid=create-user] input[name=password]', 'vera-password');
  await page.click('[data-testid=create-user] button[type=submit]');
  await page.waitForSelector('[data-testid=user-vera]');
  await page.selectOption('[data-testid=user-vera] [data-testid=grant-form] select[name=model]', 'alpha-model');
  await page.click('[data-testid=user-vera] [data-testid=grant-form] button[type=submit]');
  await page.waitForSelector('[data-testid=user-vera] .chips >> text=alpha-model');
  assert.deepEqual(page.errors, [], 'no console errors for the admin');

  // The viewer, in a separate browser context.
  const viewer = await newPage(browser);
  await login(viewer, server.base, 'vera', 'vera-password');
  await waitForHydration(viewer);
  const list = await viewer.textContent('[data-testid=model-list]');
  assert.match(list, /alpha-model/);
  assert.doesNotMatch(list, /beta-model/);
  assert.doesNotMatch(await viewer.textContent('header'), /Admin/, 'no admin links for viewers');

  // Client-side navigation into the granted model works.
  await viewer.click('text=alpha-model');
  await viewer.waitForSelector('[data-testid=model-title]');
  // A direct URL to the other model reveals nothing.
  const resp = await viewer.goto(`${server.base}/models/beta-model`);
  assert.equal(resp.status(), 404);
  assert.equal(await viewer.$('[data-testid=model-title]'), null);
  // Nor does the admin page.
  await viewer.goto(`${server.base}/admin/users`);
  assert.equal(await viewer.$('[data-testid=user-admin]'), null);
  assert.deepEqual(viewer.errors.filter((e) => !/404|403|401/.test(e)), [], 'no console errors for the viewer');

  // Logging out ends the session: protected pages send the browser to the login page.
  await viewer.goto(`${server.base}/`);
  await Promise.all([viewer.waitForNavigation(), viewer.click('text=Log out')]);
  await viewer.goto(`${server.base}/`);
  assert.match(viewer.url(), /\/login\?next=/);
});

test('login and admin forms work without JavaScript', async () => {
  const page = await newPage(browser, { javaScriptEnabled: false });
  // Wrong password: the generic error.
  await login(page, server.base, 'admin', 'wrong-password');
  assert.match(await page.textContent('[data-testid=login-error]'), /Invalid username or password/);
  // Right password, with a deep link preserved through the login form.
  await page.goto(`${server.base}/admin/models`);
  assert.match(page.url(), /\/login\?next=%2Fadmin%2Fmodels/);
  await page.fill('input[name=username]', 'admin');
  await page.fill('input[name=password]', ADMIN_PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click('form[action="/auth/login"] button[type=submit]')]);
  assert.match(page.url(), /\/admin\/models$/);

  // An admin form posts straight to its server function and comes back to the page.
  await page.fill('[data-testid=create-model] input[name=name]', 'gamma-model');
  await Promise.all([page.waitForNavigation(), page.click('[data-testid=create-model] button[type=submit]')]);
  assert.match(await page.textContent('[data-testid=admin-models]'), /gamma-model/);

  await page.goto(`${server.base}/admin/users`);
  await page.fill('[data-testid=create-user] input[name=username]', 'nojs-viewer');
  await page.fill('[data-testid=create-user] input[name=password]', 'nojs-password');
  await Promise.all([page.waitForNavigation(), page.click('[data-testid=create-user] button[type=submit]')]);
  await page.selectOption('[data-testid=user-nojs-viewer] [data-testid=grant-form] select[name=model]', 'gamma-model');
  await Promise.all([
    page.waitForNavigation(),
    page.click('[data-testid=user-nojs-viewer] [data-testid=grant-form] button[type=submit]'),
  ]);

  // The new viewer logs in without JavaScript and sees exactly the granted model.
  const viewer = await newPage(browser, { javaScriptEnabled: false });
  await login(viewer, server.base, 'nojs-viewer', 'nojs-password');
  const list = await viewer.textContent('[data-testid=model-list]');
  assert.match(list, /gamma-model/);
  assert.doesNotMatch(list, /alpha-model|beta-model/);
});

test('theme switch works and persists', async () => {
  const page = await newPage(browser);
  await login(page, server.base, 'admin', ADMIN_PASSWORD);
  const before = await page.getAttribute('html', 'data-theme');
  await Promise.all([page.waitForNavigation(), page.click('a.theme')]);
  const after = await page.getAttribute('html', 'data-theme');
  assert.notEqual(before, after);
  assert.ok(['dark', 'light'].includes(after));
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.ok(bg, 'stylesheet applied');
});
