// Test harness: starts the real `modelwatch` binary on a free loopback port with a fresh
// data dir, and Debian's Chromium through playwright-core (which never downloads a browser).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const ADMIN_PASSWORD = 'e2e-admin-password';

export async function startServer({ args = ['serve'], env = {} } = {}) {
  const bin = process.env.MODELWATCH_BIN;
  if (!bin) throw new Error('MODELWATCH_BIN must point at the modelwatch binary (./dev.sh test sets it)');
  const dataDir = mkdtempSync(join(tmpdir(), 'modelwatch-e2e-'));
  const child = spawn(bin, args, {
    env: {
      PATH: process.env.PATH,
      MODELWATCH_DATA_DIR: dataDir,
      MODELWATCH_LISTEN: '127.0.0.1:0',
      MODELWATCH_ADMIN_PASSWORD: ADMIN_PASSWORD,
      RUST_LOG: 'warn,modelwatch=info',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 60_000);
    child.stderr.on('data', (chunk) => {
      log += chunk.toString();
      const m = log.match(/listening on http:\/\/(\S+)/);
      if (m) { clearTimeout(timer); resolve(`http://${m[1]}`); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}:\n${log}`)); });
  });
  return {
    base,
    log: () => log,
    async stop() {
      child.removeAllListeners('exit');
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function startBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic'],
  });
}

// A page that records console errors and failed requests (CSP violations and hydration
// panics show up there), so tests can assert the page ran cleanly.
export async function newPage(browser, { javaScriptEnabled = true } = {}) {
  const context = await browser.newContext({ javaScriptEnabled });
  const page = await context.newPage();
  page.errors = [];
  page.on('console', (msg) => { if (msg.type() === 'error') page.errors.push(msg.text()); });
  page.on('pageerror', (err) => page.errors.push(String(err)));
  return page;
}

export async function login(page, base, username, password) {
  await page.goto(`${base}/login`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForNavigation(), page.click('form[action="/auth/login"] button[type=submit]')]);
}

// Waits until the wasm bundle has hydrated the page (the loader sets no flag, so we wait for
// the module to have been fetched and instantiated, then for the network to go quiet).
export async function waitForHydration(page) {
  await page.waitForLoadState('networkidle');
  await page.waitForFunction(() => performance.getEntriesByType('resource').some((e) => e.name.endsWith('_bg.wasm')));
  await page.waitForTimeout(200);
}
