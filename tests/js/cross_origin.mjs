#!/usr/bin/env node
// A page of another origin reads the gateway's REST resources the way the
// seed's front end does (axios withCredentials and an authorization header),
// in a real headless Chromium through playwright-core, for
// tests/interop/test_browser.py.
//
// Usage:
//   node cross_origin.mjs GATEWAY_URL PAGE_PORT TOKEN ROOM
//   e.g. node cross_origin.mjs http://127.0.0.1:8080 5173 eyJ... 4
//
// The page is served by this script at http://127.0.0.1:PAGE_PORT/, so its
// origin differs from the gateway's. With credentials:
// 'include' and the header authorization: Bearer TOKEN it fetches
//   GET /v1/api/chat/ROOM        (history)
//   GET /v1/api/chat/last/connect
//   GET /v1/api/chat/last/message (no query: the caller's rooms)
// and renders them. Chromium enforces CORS: an answer without the grant
// for this origin is refused. One JSON line is printed on stdout:
// {"ok":true,"history":[...],"lastConnect":{...},"lastMessages":[...]} when the
// page rendered all three, else {"ok":false,"error":...,"console":[...]};
// the exit code is 0 either way (the test decides), 1 on a harness failure.

import http from 'node:http';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'];
const TIMEOUT_MS = 20_000;

const [gatewayUrl, pagePort, token, room] = process.argv.slice(2);
if (!gatewayUrl || !pagePort || !token || !room) {
  console.error('usage: node cross_origin.mjs GATEWAY_URL PAGE_PORT TOKEN ROOM');
  process.exit(2);
}

// The page: what the seed's app does on load, with fetch in place of axios.
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>front end</title>
<ul id="history"></ul><p id="last-connect"></p><ul id="badges"></ul>
<script>
const api = ${JSON.stringify(gatewayUrl)} + '/v1/api/chat';
const headers = { authorization: 'Bearer ' + ${JSON.stringify(token)} };
async function get(path) {
  const response = await fetch(api + path, { credentials: 'include', headers });
  if (!response.ok) throw new Error('HTTP ' + response.status + ' for ' + path);
  return response.json();
}
function item(list, text, data) {
  const li = document.createElement('li');
  li.textContent = text;
  Object.assign(li.dataset, data);
  document.getElementById(list).append(li);
}
(async () => {
  const history = await get('/' + ${JSON.stringify(room)});
  history.forEach((m) => item('history', m.message, { id: m.id, memberId: m.memberId }));
  const last = await get('/last/connect');
  const lastConnect = document.getElementById('last-connect');
  lastConnect.textContent = last.lastConnect;
  lastConnect.dataset.memberId = last.memberId;
  const lastMessages = await get('/last/message');
  lastMessages.forEach((m) => item('badges', m.createAt, { room: m.chatRoomId, memberId: m.memberId }));
  document.body.dataset.state = 'done';
})().catch((error) => {
  document.body.dataset.state = 'failed';
  document.body.dataset.error = String(error);
});
</script>`;

const server = http.createServer((request, response) => {
  response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  response.end(PAGE);
});
await new Promise((resolve) => server.listen(Number(pagePort), '127.0.0.1', resolve));

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: TIMEOUT_MS });
try {
  const page = await browser.newPage();
  const console_ = [];
  page.on('console', (message) => console_.push(`${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => console_.push(`page error: ${error.message}`));
  await page.goto(`http://127.0.0.1:${pagePort}/`, { timeout: TIMEOUT_MS });
  await page.waitForSelector('body[data-state]', { state: 'attached', timeout: TIMEOUT_MS });
  const result = await page.evaluate(() => {
    const list = (id) => [...document.querySelectorAll(`#${id} li`)];
    const last = document.getElementById('last-connect');
    return {
      ok: document.body.dataset.state === 'done',
      error: document.body.dataset.error ?? null,
      origin: location.origin,
      history: list('history').map((li) => ({ id: li.dataset.id, text: li.textContent })),
      lastConnect: { memberId: last.dataset.memberId ?? null, at: last.textContent },
      lastMessages: list('badges').map((li) => ({ room: li.dataset.room, memberId: li.dataset.memberId })),
    };
  });
  console.log(JSON.stringify({ ...result, console: console_ }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: `harness: ${error.message}` }));
  process.exitCode = 1;
} finally {
  await browser.close();
  server.close();
}
