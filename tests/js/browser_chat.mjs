#!/usr/bin/env node
// Drives the gateway's demo chat page (gateway/static/index.html) in a real
// headless Chromium through playwright-core, for tests/interop/test_browser.py.
//
// Usage:
//   node browser_chat.mjs BASE_URL SCREENSHOT.png [ROOM]
//   e.g. node browser_chat.mjs http://127.0.0.1:8080/ /tmp/demo-chat.png 4
//
// The browser is the system Chromium (/usr/bin/chromium, or $CHROMIUM_PATH);
// playwright-core never downloads one. Two isolated browser contexts (two
// people, each with its own localStorage and member id) open the page:
//   1. A joins ROOM as "henhen" and sends a first message; A sees it live.
//   2. B joins as "토끼" and must show that message from the history API.
//   3. A sends Korean + emoji text; both pages must show it, once each.
//   4. B replies with text that looks like HTML; A must show it as plain text.
//   5. A screenshot of page B is saved to SCREENSHOT.png.
//   6. B switches to ROOM+1: it must UNSUBSCRIBE from ROOM and receive nothing
//      more from it (checked on the WebSocket frames); back in ROOM, the history
//      shows everything once.
// On success one JSON line {"ok":true,...} is printed on stdout and the exit
// code is 0. Any failed check, page error, console error or failed request
// prints {"ok":false,"error":...} and a message on stderr and exits 1; the
// global timeout exits 3.

import { chromium } from 'playwright-core';

const GLOBAL_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 10_000;
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const FIRST = 'first message, before B joins';
const HELLO = '안녕하세요 👋🏽 반가워요! 🎉';
const HTMLISH = '<b>not bold</b> & <img src=x onerror=alert(1)>';
const LATER = 'sent while B is in another room';

const [baseUrl, screenshotPath, roomArg] = process.argv.slice(2);
if (!baseUrl || !screenshotPath) {
  console.error('usage: node browser_chat.mjs BASE_URL SCREENSHOT.png [ROOM]');
  process.exit(2);
}
const room = roomArg || String(1000 + Math.floor(Math.random() * 9000));

let browser = null;
let step = 'launch';
const problems = []; // console errors, page errors, failed requests
const started = Date.now();

async function finish(code, result) {
  console.log(JSON.stringify(result));
  if (code !== 0) console.error(`browser_chat: ${result.error}`);
  if (browser) {
    await Promise.race([browser.close().catch(() => {}), sleep(5000)]);
  }
  process.exit(code);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const globalTimer = setTimeout(() => {
  finish(3, { ok: false, error: `global timeout of ${GLOBAL_TIMEOUT_MS} ms`, step, problems });
}, GLOBAL_TIMEOUT_MS);


function check(condition, message) {
  if (!condition) throw new Error(message);
}

const frames = { A: [], B: [] }; // STOMP frames each page received: {at, text}
const sentFrames = { A: [], B: [] };

function watch(page, name) {
  page.on('websocket', (socket) => {
    socket.on('framereceived', ({ payload }) => frames[name].push(String(payload)));
    socket.on('framesent', ({ payload }) => sentFrames[name].push(String(payload)));
  });
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`${name} console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`${name} page error: ${error.message}`));
  page.on('requestfailed', (request) => {
    problems.push(`${name} request failed: ${request.url()} ${request.failure()?.errorText}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) {
      problems.push(`${name} HTTP ${response.status()} for ${response.url()}`);
    }
  });
}

function assertNoProblems() {
  check(problems.length === 0, `problems on the page:\n  ${problems.join('\n  ')}`);
}

async function openPage(name) {
  const context = await browser.newContext({
    viewport: { width: 1100, height: 720 },
    deviceScaleFactor: 1,
    colorScheme: 'light',
    locale: 'ko-KR',
  });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  watch(page, name);
  const response = await page.goto(baseUrl, { waitUntil: 'load' });
  check(response && response.status() === 200, `${name}: GET ${baseUrl} gave ${response?.status()}`);
  await page.waitForSelector('#status[data-state="connected"]');
  return page;
}

async function join(page, nickname, where = room) {
  await page.fill('#room', where);
  await page.fill('#nickname', nickname);
  await page.click('#join');
  await page.waitForSelector(`#messages[data-room="${where}"][data-state="ready"]`, { state: 'attached' });
  return page.inputValue('#member-id');
}

async function send(page, text) {
  await page.fill('#message', text);
  await page.press('#message', 'Enter');
  // The composer empties once the frame is handed to the socket.
  await page.waitForFunction(() => document.querySelector('#message').value === '');
}

async function waitForText(page, text) {
  await page.waitForFunction(
    (wanted) => [...document.querySelectorAll('#messages .message .text')]
      .some((node) => node.textContent === wanted),
    text,
  );
}

async function messagesOf(page) {
  return page.$$eval('#messages .message', (items) => items.map((item) => ({
    id: item.dataset.id,
    memberId: item.dataset.memberId,
    own: item.classList.contains('own'),
    nickname: item.querySelector('.nick')?.textContent ?? null,
    text: item.querySelector('.text')?.textContent ?? null,
    elements: item.querySelectorAll('.bubble b, .bubble img').length,
  })));
}

function assertOnce(list, text, own, who) {
  const found = list.filter((message) => message.text === text);
  check(found.length === 1, `${who}: ${JSON.stringify(text)} shown ${found.length} times`);
  check(found[0].own === own, `${who}: ${JSON.stringify(text)} should ${own ? '' : 'not '}be own`);
  check(/^[0-9a-f]{24}$/.test(found[0].id), `${who}: bad message id ${found[0].id}`);
  return found[0];
}

async function main() {
  step = 'launch';
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 20_000 });

  step = 'A opens and joins';
  const pageA = await openPage('A');
  const memberA = await join(pageA, 'henhen');
  const endpoint = await pageA.textContent('#endpoint');

  step = 'A sends the first message';
  await send(pageA, FIRST);
  await waitForText(pageA, FIRST);

  step = 'B opens and joins: history';
  const pageB = await openPage('B');
  const memberB = await join(pageB, '토끼');
  check(memberA !== memberB, `both pages use member id ${memberA}`);
  await waitForText(pageB, FIRST);
  const historyOnB = (await messagesOf(pageB)).map((message) => message.text);
  check(
    JSON.stringify(historyOnB) === JSON.stringify([FIRST]),
    `B's history should be exactly [${FIRST}], got ${JSON.stringify(historyOnB)}`,
  );

  step = 'A sends Korean and emoji';
  await send(pageA, HELLO);
  await waitForText(pageB, HELLO);
  await waitForText(pageA, HELLO);

  step = 'B replies with HTML-looking text';
  await send(pageB, HTMLISH);
  await waitForText(pageA, HTMLISH);
  await waitForText(pageB, HTMLISH);

  step = 'check both pages';
  // Let any duplicate delivery surface before counting.
  await sleep(300);
  const onA = await messagesOf(pageA);
  const onB = await messagesOf(pageB);
  for (const [who, list, ownTexts] of [['A', onA, [FIRST, HELLO]], ['B', onB, [HTMLISH]]]) {
    const texts = list.map((message) => message.text);
    check(
      JSON.stringify(texts) === JSON.stringify([FIRST, HELLO, HTMLISH]),
      `${who} shows ${JSON.stringify(texts)}`,
    );
    for (const text of [FIRST, HELLO, HTMLISH]) assertOnce(list, text, ownTexts.includes(text), who);
    check(list.every((message) => message.elements === 0), `${who} rendered message text as HTML`);
  }
  const helloOnB = assertOnce(onB, HELLO, false, 'B');
  check(helloOnB.nickname === 'henhen', `B shows A's nickname as ${helloOnB.nickname}`);
  check(helloOnB.memberId === memberA, `B shows A's member id as ${helloOnB.memberId}`);
  check(
    JSON.stringify(onA.map((m) => m.id)) === JSON.stringify(onB.map((m) => m.id)),
    'A and B show different message ids',
  );
  const errorsShown = await pageB.$$eval('#errors li', (items) => items.map((i) => i.textContent));
  check(errorsShown.length === 0, `B shows errors: ${JSON.stringify(errorsShown)}`);
  const status = await pageB.textContent('#status');
  assertNoProblems();

  step = 'screenshot';
  await pageB.bringToFront();
  await pageB.locator('#message').blur();
  await pageB.mouse.move(1, 1);
  await sleep(350); // the new-message animation and smooth scrolling settle
  await pageB.screenshot({ path: screenshotPath, fullPage: false });
  assertNoProblems();

  step = 'B switches rooms';
  const otherRoom = String(BigInt(room) + 1n);
  const subscribeFrame = sentFrames.B.find((f) => f.startsWith('SUBSCRIBE\n') && f.includes(`destination:/sub/chat/${room}\n`));
  check(subscribeFrame, `B sent no SUBSCRIBE to /sub/chat/${room}`);
  const subscriptionId = /\nid:([^\n]*)\n/.exec(subscribeFrame)[1];
  await join(pageB, '토끼', otherRoom);
  check(
    sentFrames.B.some((f) => f.startsWith('UNSUBSCRIBE\n') && f.includes(`\nid:${subscriptionId}\n`)),
    `B did not UNSUBSCRIBE ${subscriptionId} when leaving room ${room}`,
  );
  check((await messagesOf(pageB)).length === 0, `B shows messages of room ${room} in ${otherRoom}`);
  const receivedBefore = frames.B.length;
  await send(pageA, LATER);
  await waitForText(pageA, LATER);
  await sleep(300);
  const leaked = frames.B.slice(receivedBefore).filter((f) => f.includes(LATER));
  check(leaked.length === 0, `B still receives room ${room} after leaving it: ${leaked[0]}`);
  check((await messagesOf(pageB)).length === 0, `B shows a message of room ${room} in ${otherRoom}`);
  await join(pageB, '토끼', room);
  await waitForText(pageB, LATER);
  const backOnB = (await messagesOf(pageB)).map((message) => message.text);
  const all = [FIRST, HELLO, HTMLISH, LATER];
  check(JSON.stringify(backOnB) === JSON.stringify(all), `B back in ${room} shows ${JSON.stringify(backOnB)}`);
  assertNoProblems();

  return {
    ok: true,
    otherRoom,
    backOnB,
    room,
    endpoint,
    memberA,
    memberB,
    historyOnB,
    messagesOnA: onA.map(({ text, own }) => ({ text, own })),
    messagesOnB: onB.map(({ text, own }) => ({ text, own })),
    status: status.trim(),
    screenshot: screenshotPath,
    browser: browser.version(),
    elapsedMs: Date.now() - started,
  };
}

main().then(
  (result) => {
    clearTimeout(globalTimer);
    return finish(0, result);
  },
  (error) => {
    clearTimeout(globalTimer);
    const message = error instanceof Error ? error.message : String(error);
    return finish(1, { ok: false, step, error: `${step}: ${message}`, problems });
  },
);
