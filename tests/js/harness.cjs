// The line protocol the scriptable STOMP clients share (stompjs_client.mjs,
// variants_client.mjs, legacy_client.cjs), driven by tests/support/node.py:
//
//   node CLIENT '{"timeoutMs": 30000, "debug": false, "actions": [...]}'
//
// The optional argv scenario's actions run first; then one JSON action per
// line is read from stdin until it ends. Actions run one at a time, in order;
// each names its operation in "op", and its "seq" (by default its position)
// is echoed in the {"event":"done","seq":N,"op":...,...} line that reports
// its result. When stdin ends, the client's shutdown runs and the process
// exits 0.
//
// Every output line on stdout is one JSON object with an "event" field. Any
// failure (bad action, lost connection while waiting, global timeout) is
// reported on stderr and as {"event":"fatal","message":...}, and the exit
// code is non-zero: 1 for errors, 3 for the global timeout.
//
// CommonJS, so that legacy_client.cjs can require() it and the ES modules can
// import it (`import harness from './harness.cjs'`).

'use strict';

const { createInterface } = require('node:readline');

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function need(action, key) {
  if (action[key] === undefined) throw new Error(`action ${action.op} needs "${key}"`);
  return action[key];
}

// The connection an action names in "client", from `entries` (name -> entry).
function entryOf(entries, action, what = 'client') {
  const name = need(action, 'client');
  const entry = entries.get(name);
  if (entry === undefined) throw new Error(`no ${what} named ${JSON.stringify(name)}`);
  return entry;
}

function frameEvent(event, name, frame) {
  return { event, client: name, command: frame.command, headers: { ...frame.headers }, body: frame.body };
}

function closeEvent(name, event) {
  return {
    event: 'close',
    client: name,
    code: event.code,
    reason: String(event.reason ?? ''),
    wasClean: Boolean(event.wasClean),
  };
}

// A promise of what `register` hands its callback, which fails instead when
// the connection goes and failWaiters() is called on `waiters`.
function waiting(waiters, register) {
  return new Promise((resolve, reject) => {
    waiters.add(reject);
    register(value => {
      waiters.delete(reject);
      resolve(value);
    });
  });
}

// Fail every pending wait of a connection with `message` (it is gone).
function failWaiters(waiters, message) {
  const pending = [...waiters];
  waiters.clear();
  for (const fail of pending) fail(new Error(message));
}

// The headers of an action's frame: its "headers", then `extra`, then
// "receipt" when it asks for one.
function headersOf(action, extra = {}) {
  const headers = { ...(action.headers ?? {}), ...extra };
  if (action.receipt !== undefined) headers.receipt = action.receipt;
  return headers;
}

// What a SEND action sends: its "bodies", or its one "body". A receipt needs
// a single body.
function bodiesOf(action) {
  const bodies = action.bodies ?? [need(action, 'body')];
  if (action.receipt !== undefined && bodies.length !== 1) throw new Error('a receipt needs a single body');
  return bodies;
}

// A "done" result, with the event of the RECEIPT that `receipt` (a promise of
// it, or undefined when the action asked for none) settles with.
async function withReceipt(result, name, receipt) {
  if (receipt !== undefined) result.receipt = frameEvent('receipt', name, await receipt);
  return result;
}

// Subscribe `entry.client` (stompjs 2 or 7: subscribe(destination, callback,
// headers) returns {id}) and report every MESSAGE it gets with `toEvent(name,
// subscriptionId, message)`; return the subscription id.
function subscribeReporting(entry, destination, headers, toEvent) {
  const holder = {};
  const subscription = entry.client.subscribe(
    destination,
    message => emit(toEvent(entry.name, holder.id, message)),
    headers,
  );
  holder.id = subscription.id;
  return subscription.id;
}

// The "sleep" operation: {"op":"sleep","ms":MS}.
function sleep(action) {
  return new Promise(resolve => setTimeout(() => resolve({}), need(action, 'ms')));
}

function parseScenario(program, text) {
  if (text === undefined || text === '') return {};
  try {
    const value = JSON.parse(text);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error('the scenario must be a JSON object');
    }
    return value;
  } catch (error) {
    process.stderr.write(`${program}: invalid scenario argument: ${error.message}\n`);
    process.exit(1);
  }
}

// Read the scenario from argv, report crashes as fatal and arm the global
// timeout. Returns {scenario, serve(operations, shutdown)}: serve() runs the
// actions with `operations` (op name -> function(action) returning the "done"
// fields or a promise of them), then awaits `shutdown()` and exits 0.
function start(program) {
  const scenario = parseScenario(program, process.argv[2]);

  function fatal(message, code = 1) {
    process.stderr.write(`${program}: ${message}\n`);
    emit({ event: 'fatal', message });
    process.exit(code);
  }

  process.on('uncaughtException', error => fatal(`uncaught exception: ${error.stack ?? error}`));
  process.on('unhandledRejection', error => fatal(`unhandled rejection: ${error?.stack ?? error}`));

  const timeoutMs = scenario.timeoutMs ?? 30_000;
  setTimeout(() => fatal(`global timeout of ${timeoutMs} ms reached`, 3), timeoutMs).unref();

  async function run(operations, action, index) {
    const seq = action.seq ?? index;
    try {
      const operation = operations[action.op];
      if (operation === undefined) throw new Error(`unknown op ${JSON.stringify(action.op)}`);
      emit({ event: 'done', seq, op: action.op, ...(await operation(action)) });
    } catch (error) {
      throw new Error(`action #${seq} ${JSON.stringify(action)} failed: ${error.message}`);
    }
  }

  async function main(operations, shutdown) {
    let index = 0;
    for (const action of scenario.actions ?? []) await run(operations, action, index++);
    const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
    for await (const line of lines) {
      if (line.trim() === '') continue;
      let action;
      try {
        action = JSON.parse(line);
      } catch (error) {
        throw new Error(`invalid action line ${JSON.stringify(line)}: ${error.message}`);
      }
      await run(operations, action, index++);
    }
    await shutdown();
    process.exit(0);
  }

  function serve(operations, shutdown) {
    main(operations, shutdown).catch(error => fatal(error.message));
  }

  return { scenario, serve };
}

module.exports = {
  bodiesOf,
  closeEvent,
  emit,
  entryOf,
  failWaiters,
  frameEvent,
  headersOf,
  need,
  sleep,
  start,
  subscribeReporting,
  waiting,
  withReceipt,
};
