// An SMSC for smsgate's end-to-end tests, built on the npm package `smpp` (not on smsgate's
// own codec). It accepts binds, records every PDU it receives or sends as one JSON line,
// answers submit_sm with message ids (hex with leading zeros), sends delivery receipts,
// and takes commands on a small HTTP control port:
//
//   POST /config {...}   change the behaviour (see `config` below), answers the new config
//   POST /mo {source, dest, text, parts, order, ref, coding}   inject a user reply (MO);
//        with parts > 1 it is cut into UCS-2 parts with a concatenation UDH, sent in `order`
//        (1-based part numbers, repeats allowed)
//   POST /kill           drop every connection at once (held submits stay unanswered)
//   GET  /status         {sessions, submits}
//
// Usage: node smsc.js RECORD_FILE   (prints "ready SMPP_PORT CONTROL_PORT" once listening)
'use strict';
const fs = require('fs');
const http = require('http');
const smpp = require('smpp');

const record = fs.openSync(process.argv[2] || 'pdus.jsonl', 'a');
const config = {
  system_id: 'smsgate',
  password: 'secret',
  receipt_delay_ms: 50,
  receipt_form: 'text', // text, tlv or both
  receipt_before_resp: false,
  receipt_id_base: 'same', // 'dec': the text receipt writes the (hex) id in decimal
  undeliverable: [], // destinations whose receipt says UNDELIV
  refuse: [], // destinations answered ESME_RINVDSTADR
  throttle: 0, // answer the next N submit_sm with ESME_RTHROTTLED
  answer_then_hold: -1, // answer N more submit_sm, then hold every later one (-1: never hold)
  receipts: true, // send receipts when asked for (registered_delivery)
  record: true, // write the JSON lines (off for benchmarks)
};
const sessions = new Set();
let nextId = 0x00a0000;
let submits = 0;

function log(direction, pdu, extra) {
  if (!config.record) return;
  const entry = {
    t: Date.now() / 1000,
    dir: direction,
    command: pdu.command,
    command_status: pdu.command_status || 0,
    sequence: pdu.sequence_number,
  };
  for (const key of ['system_id', 'system_type', 'source_addr', 'destination_addr',
    'esm_class', 'data_coding', 'registered_delivery', 'message_id',
    'source_addr_ton', 'source_addr_npi', 'dest_addr_ton', 'dest_addr_npi']) {
    if (pdu[key] !== undefined) entry[key] = pdu[key];
  }
  const sm = pdu.short_message;
  if (sm && sm.message !== undefined) {
    entry.udh = (sm.udh || []).map((u) => Buffer.from(u).toString('hex'));
    entry.text = Buffer.isBuffer(sm.message) ? sm.message.toString('hex') : sm.message;
  } else if (Buffer.isBuffer(sm)) {
    entry.short_message_hex = sm.toString('hex');
  }
  fs.writeSync(record, JSON.stringify(Object.assign(entry, extra || {})) + '\n');
}

function ucs2(text) {
  const buf = Buffer.from(text, 'utf16le');
  buf.swap16();
  return buf;
}

function stamp() {
  const d = new Date();
  const p = (n) => String(n).padStart(2, '0');
  return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) +
    p(d.getUTCHours()) + p(d.getUTCMinutes());
}

function sendPdu(session, command, options, onResp) {
  const pdu = new smpp.PDU(command, options);
  session.send(pdu, (resp) => {
    log('in', resp);
    if (onResp) onResp(resp);
  });
  log('out', pdu);
}

function receipt(session, submit, messageId) {
  const undeliv = config.undeliverable.includes(submit.destination_addr);
  const stat = undeliv ? 'UNDELIV' : 'DELIVRD';
  const err = undeliv ? '001' : '000';
  const options = {
    source_addr: submit.destination_addr,
    destination_addr: submit.source_addr,
    esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT,
    data_coding: 0,
    short_message: Buffer.alloc(0),
  };
  if (config.receipt_form !== 'tlv') {
    const textId = config.receipt_id_base === 'dec' ? parseInt(messageId, 16).toString() : messageId;
    options.short_message = Buffer.from(
      `id:${textId} sub:001 dlvrd:${undeliv ? '000' : '001'} submit date:${stamp()} ` +
      `done date:${stamp()} stat:${stat} err:${err} text:`, 'ascii');
  }
  if (config.receipt_form !== 'text') {
    options.receipted_message_id = messageId;
    options.message_state = undeliv ? 5 : 2;
  }
  deliver(session, options);
}

// A receipt whose link is gone waits for the next bind, as an SMSC stores receipts.
function deliver(session, options) {
  const live = sessions.has(session) ? session : [...sessions].find((s) => s.bound);
  if (!live) {
    setTimeout(() => deliver(session, options), 100);
    return;
  }
  sendPdu(live, 'deliver_sm', options);
}

function onSubmit(session, pdu) {
  submits += 1;
  if (config.throttle > 0) {
    config.throttle -= 1;
    answer(session, pdu, { command_status: smpp.ESME_RTHROTTLED });
    return;
  }
  if (config.refuse.includes(pdu.destination_addr)) {
    answer(session, pdu, { command_status: smpp.ESME_RINVDSTADR });
    return;
  }
  if (config.answer_then_hold === 0) {
    log('held', pdu);
    return;
  }
  if (config.answer_then_hold > 0) config.answer_then_hold -= 1;
  const messageId = (nextId++).toString(16).toUpperCase().padStart(10, '0');
  const wantsReceipt = config.receipts && (pdu.registered_delivery & 0x03) !== 0;
  if (wantsReceipt && config.receipt_before_resp) receipt(session, pdu, messageId);
  answer(session, pdu, { message_id: messageId });
  if (wantsReceipt && !config.receipt_before_resp) {
    setTimeout(() => receipt(session, pdu, messageId), config.receipt_delay_ms);
  }
}

function answer(session, pdu, options) {
  const resp = pdu.response(options);
  session.send(resp);
  log('out', resp);
}

const server = smpp.createServer((session) => {
  session.socket.setNoDelay(true); // answer at once, as an SMSC should (no Nagle delay)
  sessions.add(session);
  session.on('close', () => sessions.delete(session));
  session.on('error', () => sessions.delete(session));
  session.on('pdu', (pdu) => {
    if (!pdu.command.endsWith('_resp')) log('in', pdu);
  });
  const bind = (pdu) => {
    const ok = pdu.system_id === config.system_id && pdu.password === config.password;
    answer(session, pdu, ok ? { system_id: 'testsmsc' } : { command_status: smpp.ESME_RBINDFAIL });
    if (ok) session.bound = true;
    else session.close();
  };
  session.on('bind_transceiver', bind);
  session.on('bind_transmitter', bind);
  session.on('bind_receiver', bind);
  session.on('submit_sm', (pdu) => onSubmit(session, pdu));
  session.on('enquire_link', (pdu) => answer(session, pdu));
  session.on('unbind', (pdu) => { answer(session, pdu); session.close(); });
});

function injectMo(body) {
  const session = [...sessions][0];
  if (!session) return 'no session';
  const parts = Math.max(1, body.parts || 1);
  const text = body.text;
  const pieces = [];
  const size = Math.ceil(text.length / parts);
  for (let i = 0; i < parts; i += 1) pieces.push(text.slice(i * size, (i + 1) * size));
  const order = body.order || pieces.map((_, i) => i + 1);
  const ref = body.ref === undefined ? 0x42 : body.ref;
  for (const seq of order) {
    let payload = ucs2(pieces[seq - 1]);
    let esm = 0;
    if (parts > 1) {
      payload = Buffer.concat([Buffer.from([5, 0, 3, ref, parts, seq]), payload]);
      esm = smpp.ESM_CLASS.UDH_INDICATOR;
    }
    sendPdu(session, 'deliver_sm', {
      source_addr: body.source, destination_addr: body.dest, esm_class: esm,
      data_coding: 8, short_message: payload,
    });
  }
  return 'ok';
}

function control(req, res) {
  let data = '';
  req.on('data', (chunk) => { data += chunk; });
  req.on('end', () => {
    const body = data ? JSON.parse(data) : {};
    let out;
    if (req.url === '/config') out = Object.assign(config, body);
    else if (req.url === '/mo') out = { result: injectMo(body) };
    else if (req.url === '/kill') {
      for (const s of sessions) s.destroy();
      out = { killed: sessions.size };
    } else out = { sessions: sessions.size, submits };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(out));
  });
}

server.listen(0, '127.0.0.1', () => {
  const ctl = http.createServer(control);
  ctl.listen(0, '127.0.0.1', () => {
    process.stdout.write(`ready ${server.address().port} ${ctl.address().port}\n`);
  });
});
