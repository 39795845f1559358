// The broker's own limit for the relay benchmark: node's amqplib publishing persistent
// messages shaped like sluice's (properties and headers) with publisher confirms into a durable
// queue, at most WINDOW unconfirmed at once.
// Prints one JSON line: {"messages":N,"seconds":S,"rate":R,"p99ConfirmMs":...}.
//
// usage: node amqp_publisher.js AMQP_URL QUEUE COUNT WINDOW BODY_BYTES QUEUE_TYPE
'use strict';

const amqp = require('amqplib');

const [url, queue, countText, windowText, bodyText, queueType] = process.argv.slice(2);
const count = Number(countText);
const windowSize = Number(windowText);
const bodyBytes = Number(bodyText);

async function main() {
  const conn = await amqp.connect(url);
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue(queue, {durable: true, arguments: {'x-queue-type': queueType}});
  const body = Buffer.from(JSON.stringify({t: 0, pad: 'x'.repeat(Math.max(0, bodyBytes - 16))}));
  const latencies = [];
  let sent = 0;
  let settled = 0;
  let failed = 0;
  const started = performance.now();
  await new Promise((resolve) => {
    const pump = () => {
      while (sent - settled < windowSize && sent < count) {
        const at = performance.now();
        sent += 1;
        // The same shape as sluice's messages (README, message format): a uuid-sized
        // message_id, a timestamp, the queue and partition headers, mandatory routing.
        const id = '01900000-0000-7000-8000-' + String(sent).padStart(12, '0');
        ch.publish('', queue, body, {persistent: true, mandatory: true,
                                     contentType: 'application/json', messageId: id,
                                     timestamp: Math.floor(Date.now() / 1000),
                                     headers: {queue: queue, partition: 'Default'}}, (err) => {
          settled += 1;
          if (err) failed += 1;
          latencies.push(performance.now() - at);
          if (settled === count) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  process.stdout.write(JSON.stringify({
    messages: count, failed, seconds, rate: count / seconds, bodyBytes: body.length,
    p99ConfirmMs: latencies[Math.floor(latencies.length * 0.99)]}) + '\n');
  await ch.deleteQueue(queue);
  await conn.close();
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({error: String(e && e.message ? e.message : e)}) + '\n');
  process.exit(1);
});
