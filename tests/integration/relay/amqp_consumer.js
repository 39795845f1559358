// An independent AMQP consumer for the relay tests and benchmark: node's amqplib, sharing no
// code with sluice. Prints one JSON object per line on stdout:
//   {"event":"ready","queue":...}        consuming (and bound, in broadcast mode)
//   {"event":"message",...}              per message (output "messages" only)
//   {"event":"done","received":N,"unique":U,"duplicates":D,...}
//
// usage: node amqp_consumer.js AMQP_URL CONFIG_JSON
// CONFIG_JSON fields:
//   queue         queue to consume (queue mode), e.g. "sluice.orders"
//   declare       with queue: assert it first with this x-queue-type ("quorum"/"classic"); a
//                 queue of another type makes the broker refuse (406), which the caller sees
//   bindExchange  instead of queue: assert this durable fanout exchange, bind an exclusive
//                 queue of our own to it and consume that (broadcast mode)
//   expect        stop after this many distinct message ids
//   idleMs        stop when nothing arrived for this long (after the first message; default 5000)
//   timeoutMs     stop after this long in any case (default 60000)
//   output        "messages" (every message in full), "ids" (the ids in the done line) or
//                 "latency" (the done line carries delivery latency percentiles computed from
//                 the "t" field, Unix epoch milliseconds, of each JSON body)
'use strict';

const amqp = require('amqplib');

const url = process.argv[2];
const config = JSON.parse(process.argv[3] || '{}');
const output = config.output || 'messages';
const idleMs = config.idleMs || 5000;
const timeoutMs = config.timeoutMs || 60000;

function print(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function nowMs() {
  return performance.timeOrigin + performance.now();
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)];
}

function headersOf(headers) {
  const out = {};
  for (const [k, v] of Object.entries(headers || {})) {
    out[k] = Buffer.isBuffer(v) ? v.toString('utf8') : v;
  }
  return out;
}

async function main() {
  const conn = await amqp.connect(url);
  const ch = await conn.createChannel();
  await ch.prefetch(1000);
  let queue = config.queue;
  if (config.bindExchange) {
    await ch.assertExchange(config.bindExchange, 'fanout', {durable: true});
    const q = await ch.assertQueue('', {exclusive: true, autoDelete: true});
    await ch.bindQueue(q.queue, config.bindExchange, '');
    queue = q.queue;
  } else if (config.declare) {
    await ch.assertQueue(queue, {durable: true, arguments: {'x-queue-type': config.declare}});
  }

  const seen = new Map();
  const latencies = [];
  let received = 0;
  let firstAt = null;
  let lastAt = null;
  let unacked = 0;
  let finished = false;
  let idleTimer = null;

  const finish = async (reason) => {
    if (finished) return;
    finished = true;
    if (idleTimer) clearTimeout(idleTimer);
    const done = {event: 'done', reason, received, unique: seen.size,
                  duplicates: received - seen.size, firstAt, lastAt};
    if (output === 'ids') done.ids = [...seen.keys()];
    if (output === 'latency') {
      latencies.sort((a, b) => a - b);
      done.latencyMs = {p50: percentile(latencies, 50), p99: percentile(latencies, 99),
                        max: latencies.length ? latencies[latencies.length - 1] : null};
    }
    print(done);
    try {
      if (unacked > 0) ch.ackAll();
      await ch.close();
      await conn.close();
    } catch (e) {
      // The broker may already be gone; the counts are printed.
    }
    process.exit(0);
  };

  const armIdle = () => {
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = setTimeout(() => finish('idle'), idleMs);
  };

  await ch.consume(queue, (msg) => {
    if (msg === null) {
      finish('cancelled');
      return;
    }
    const at = nowMs();
    received += 1;
    if (firstAt === null) firstAt = at;
    lastAt = at;
    const id = msg.properties.messageId;
    seen.set(id, (seen.get(id) || 0) + 1);
    if (output === 'messages') {
      const p = msg.properties;
      print({event: 'message', exchange: msg.fields.exchange, routingKey: msg.fields.routingKey,
             redelivered: msg.fields.redelivered, body: msg.content.toString('base64'),
             properties: {messageId: p.messageId, contentType: p.contentType,
                          deliveryMode: p.deliveryMode, timestamp: p.timestamp,
                          correlationId: p.correlationId, headers: headersOf(p.headers)}});
    } else if (output === 'latency') {
      try {
        const t = JSON.parse(msg.content.toString('utf8')).t;
        if (typeof t === 'number') latencies.push(at - t);
      } catch (e) {
        // Not a benchmark body: no latency sample.
      }
    }
    unacked += 1;
    if (unacked >= 100) {
      ch.ack(msg, true);
      unacked = 0;
    }
    if (config.expect && seen.size >= config.expect) {
      finish('expected');
      return;
    }
    armIdle();
  }, {noAck: false});

  print({event: 'ready', queue});
  setTimeout(() => finish('timeout'), timeoutMs);
  if (config.idleFromStart) armIdle();
}

main().catch((e) => {
  print({event: 'error', message: String(e && e.message ? e.message : e)});
  process.exit(1);
});
