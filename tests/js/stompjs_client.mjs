#!/usr/bin/env node
// A scriptable STOMP client for the gateway's end-to-end tests
// (tests/gateway/test_node_clients.py): the real @stomp/stompjs 7 `Client`
// over the `ws` WebSocket implementation, driven by JSON actions.
//
// Usage:
//   node stompjs_client.mjs '{"timeoutMs": 30000, "actions": [...]}'
//
// The optional argv scenario runs first; then one JSON action per line is
// read from stdin until it ends (keep stdin open to drive the client
// interactively). Actions run one at a time, in order. When stdin ends,
// every client is deactivated (DISCONNECT) and the process exits 0.
//
// Every output line on stdout is one JSON object with an "event" field:
//   {"event":"done","seq":N,"op":...,...}   an action finished (its result)
//   {"event":"connected","client":C,"headers":{...}}
//   {"event":"message","client":C,"callback":SUBID,"headers":{...},
//    "body":"...","bodyBase64":"...","isBinaryBody":false}
//   {"event":"receipt"|"stompError"|"unhandledMessage"|"unhandledReceipt"|
//    "unhandledFrame","client":C,"headers":{...},"body":"..."}
//   {"event":"heartbeat"|"heartbeatLost","client":C}
//   {"event":"close","client":C,"code":N,"reason":"...","wasClean":B}
//   {"event":"wsError","client":C,"message":"..."}
//   {"event":"raw","client":C,"data":"..."}   (raw connections only)
//
// Actions ("client" names a connection; "seq" is echoed in "done"):
//   {"op":"connect","client":C,"url":U,"heartbeatIncoming":MS,
//    "heartbeatOutgoing":MS,"connectHeaders":{},"muteHeartbeats":false}
//   {"op":"subscribe","client":C,"destination":D,"id":ID?,"headers":{}?,
//    "receipt":R?}                 (with "receipt", waits for the RECEIPT)
//   {"op":"unsubscribe","client":C,"id":ID}
//   {"op":"publish","client":C,"destination":D,"body":S | "bodies":[S...],
//    "headers":{}?,"receipt":R?}   (with "receipt", waits for the RECEIPT)
//   {"op":"rawConnect","client":C,"url":U,"frames":[S...],"waitFor":CMD?}
//                                  a bare `ws` socket that sends the frames,
//                                  then nothing (not even heart-beats)
//   {"op":"terminate","client":C}  drop the socket: no DISCONNECT, no close
//   {"op":"disconnect","client":C} graceful DISCONNECT (client.deactivate())
//   {"op":"sleep","ms":MS}
//   {"op":"exit","code":N}         process.exit at once, no DISCONNECT
//
// Any failure (bad action, lost connection while waiting, global timeout)
// is reported on stderr and as {"event":"fatal",...}, and the exit code is
// non-zero: 1 for errors, 3 for the global timeout.

import { createInterface } from 'node:readline';

import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';

const PROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];

const scenario = parseScenario(process.argv[2]);
const clients = new Map(); // name -> {client, socket, subscriptions}
const raws = new Map(); // name -> ws

function parseScenario(text) {
  if (text === undefined || text === '') return {};
  try {
    const value = JSON.parse(text);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error('the scenario must be a JSON object');
    }
    return value;
  } catch (error) {
    process.stderr.write(`stompjs_client: invalid scenario argument: ${error.message}\n`);
    process.exit(1);
  }
}

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function fatal(message, code = 1) {
  process.stderr.write(`stompjs_client: ${message}\n`);
  emit({ event: 'fatal', message });
  process.exit(code);
}

process.on('uncaughtException', error => fatal(`uncaught exception: ${error.stack ?? error}`));
process.on('unhandledRejection', error => fatal(`unhandled rejection: ${error?.stack ?? error}`));

const timeoutMs = scenario.timeoutMs ?? 30_000;
setTimeout(() => fatal(`global timeout of ${timeoutMs} ms reached`, 3), timeoutMs).unref();

function debugFor(name) {
  if (!scenario.debug) return () => {};
  return text => process.stderr.write(`[${name}] ${text}\n`);
}

function frameEvent(event, name, frame) {
  return { event, client: name, command: frame.command, headers: { ...frame.headers }, body: frame.body };
}

function need(action, key) {
  if (action[key] === undefined) throw new Error(`action ${action.op} needs "${key}"`);
  return action[key];
}

function stompClient(action) {
  const name = need(action, 'client');
  const entry = clients.get(name);
  if (entry === undefined) throw new Error(`no STOMP client named ${JSON.stringify(name)}`);
  return entry;
}

// A promise that settles when the RECEIPT arrives, or fails if the socket closes first.
function receiptOf(entry, receiptId) {
  return new Promise((resolve, reject) => {
    entry.closeWaiters.add(reject);
    entry.client.watchForReceipt(receiptId, frame => {
      entry.closeWaiters.delete(reject);
      resolve(frame);
    });
  });
}

function connect(action) {
  const name = need(action, 'client');
  if (clients.has(name) || raws.has(name)) throw new Error(`client ${name} already exists`);
  const url = need(action, 'url');
  const entry = { client: undefined, socket: undefined, closeWaiters: new Set() };
  clients.set(name, entry);
  return new Promise((resolve, reject) => {
    entry.closeWaiters.add(reject);
    const client = new Client({
      webSocketFactory: () => {
        const socket = new WebSocket(url, PROTOCOLS);
        if (action.muteHeartbeats) {
          // Promise heart-beats in CONNECT, then never send them.
          const send = socket.send.bind(socket);
          socket.send = (data, ...rest) => (data === '\n' ? undefined : send(data, ...rest));
        }
        entry.socket = socket;
        return socket;
      },
      reconnectDelay: 0,
      heartbeatIncoming: action.heartbeatIncoming ?? 0,
      heartbeatOutgoing: action.heartbeatOutgoing ?? 0,
      connectHeaders: action.connectHeaders ?? {},
      debug: debugFor(name),
      onConnect: frame => {
        entry.closeWaiters.delete(reject);
        emit(frameEvent('connected', name, frame));
        resolve({ headers: { ...frame.headers }, subprotocol: entry.socket.protocol });
      },
      onStompError: frame => emit(frameEvent('stompError', name, frame)),
      onUnhandledMessage: message => emit(messageEvent(name, null, message)),
      onUnhandledReceipt: frame => emit(frameEvent('unhandledReceipt', name, frame)),
      onUnhandledFrame: frame => emit(frameEvent('unhandledFrame', name, frame)),
      onHeartbeatReceived: () => emit({ event: 'heartbeat', client: name }),
      onHeartbeatLost: () => emit({ event: 'heartbeatLost', client: name }),
      onWebSocketError: error => emit({ event: 'wsError', client: name, message: String(error?.message ?? error) }),
      onWebSocketClose: closeEvent => {
        emit({
          event: 'close',
          client: name,
          code: closeEvent.code,
          reason: String(closeEvent.reason ?? ''),
          wasClean: Boolean(closeEvent.wasClean),
        });
        const waiters = [...entry.closeWaiters];
        entry.closeWaiters.clear();
        for (const fail of waiters) {
          fail(new Error(`client ${name}: socket closed (code ${closeEvent.code}) while waiting`));
        }
      },
    });
    entry.client = client;
    client.activate();
  });
}

function messageEvent(name, callbackId, message) {
  const bytes = message.binaryBody;
  return {
    event: callbackId === null ? 'unhandledMessage' : 'message',
    client: name,
    callback: callbackId,
    command: message.command,
    headers: { ...message.headers },
    body: message.body,
    bodyBase64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'),
    isBinaryBody: message.isBinaryBody,
  };
}

async function subscribe(action) {
  const entry = stompClient(action);
  const name = action.client;
  const headers = { ...(action.headers ?? {}) };
  if (action.id !== undefined) headers.id = action.id;
  let receipt;
  if (action.receipt !== undefined) {
    headers.receipt = action.receipt;
    receipt = receiptOf(entry, action.receipt);
  }
  const holder = {};
  const subscription = entry.client.subscribe(
    need(action, 'destination'),
    message => emit(messageEvent(name, holder.id, message)),
    headers,
  );
  holder.id = subscription.id;
  const result = { id: subscription.id };
  if (receipt !== undefined) result.receipt = frameEvent('receipt', name, await receipt);
  return result;
}

function unsubscribe(action) {
  stompClient(action).client.unsubscribe(need(action, 'id'));
  return {};
}

async function publish(action) {
  const entry = stompClient(action);
  const destination = need(action, 'destination');
  const headers = { ...(action.headers ?? {}) };
  const bodies = action.bodies ?? [need(action, 'body')];
  let receipt;
  if (action.receipt !== undefined) {
    if (bodies.length !== 1) throw new Error('a receipt needs a single body');
    headers.receipt = action.receipt;
    receipt = receiptOf(entry, action.receipt);
  }
  for (const body of bodies) entry.client.publish({ destination, headers, body });
  const result = { published: bodies.length };
  if (receipt !== undefined) result.receipt = frameEvent('receipt', action.client, await receipt);
  return result;
}

function rawConnect(action) {
  const name = need(action, 'client');
  if (clients.has(name) || raws.has(name)) throw new Error(`client ${name} already exists`);
  const socket = new WebSocket(need(action, 'url'), action.protocols ?? PROTOCOLS);
  raws.set(name, socket);
  return new Promise((resolve, reject) => {
    let settled = action.waitFor === undefined;
    socket.on('open', () => {
      for (const frame of action.frames ?? []) socket.send(frame);
      if (settled) resolve({ subprotocol: socket.protocol });
    });
    socket.on('message', (data, isBinary) => {
      const text = isBinary ? Buffer.from(data).toString('latin1') : data.toString();
      emit({ event: 'raw', client: name, data: text, isBinary });
      if (!settled && text.replace(/^[\r\n]+/, '').startsWith(`${action.waitFor}\n`)) {
        settled = true;
        resolve({ subprotocol: socket.protocol });
      }
    });
    socket.on('error', error => emit({ event: 'wsError', client: name, message: String(error.message) }));
    socket.on('close', (code, reason) => {
      emit({ event: 'close', client: name, code, reason: reason.toString(), wasClean: code !== 1006 });
      if (!settled) reject(new Error(`raw client ${name}: closed (code ${code}) before ${action.waitFor}`));
    });
  });
}

function terminate(action) {
  const name = need(action, 'client');
  const socket = clients.get(name)?.socket ?? raws.get(name);
  if (socket === undefined) throw new Error(`no client named ${JSON.stringify(name)}`);
  socket.terminate();
  return {};
}

async function disconnect(action) {
  await stompClient(action).client.deactivate();
  return {};
}

const OPERATIONS = {
  connect,
  subscribe,
  unsubscribe,
  publish,
  rawConnect,
  terminate,
  disconnect,
  sleep: action => new Promise(resolve => setTimeout(() => resolve({}), need(action, 'ms'))),
  exit: action => process.exit(action.code ?? 0),
};

async function run(action, index) {
  const seq = action.seq ?? index;
  try {
    const operation = OPERATIONS[action.op];
    if (operation === undefined) throw new Error(`unknown op ${JSON.stringify(action.op)}`);
    emit({ event: 'done', seq, op: action.op, ...(await operation(action)) });
  } catch (error) {
    throw new Error(`action #${seq} ${JSON.stringify(action)} failed: ${error.message}`);
  }
}

async function shutdown() {
  for (const entry of clients.values()) {
    if (entry.client !== undefined) await entry.client.deactivate();
  }
  for (const socket of raws.values()) socket.terminate();
}

async function main() {
  let index = 0;
  for (const action of scenario.actions ?? []) await run(action, index++);
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    let action;
    try {
      action = JSON.parse(line);
    } catch (error) {
      throw new Error(`invalid action line ${JSON.stringify(line)}: ${error.message}`);
    }
    await run(action, index++);
  }
  await shutdown();
  process.exit(0);
}

main().catch(error => fatal(error.message));
