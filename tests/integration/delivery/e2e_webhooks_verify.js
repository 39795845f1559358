// Verifies deliveries recorded by e2e_signature_amqptest with the npm `standardwebhooks` package
// (an implementation independent of sluice's). Input (argv[2], a JSON file):
//   {"secrets":["whsec_…",…], "deliveries":[{"body_b64":"…","headers":{"webhook-id":…,…}},…]}
// Output (stdout, one JSON object):
//   {"vector":"v1,…", "results":[{"id":…, "verified":[true,…] (one per secret),
//    "tampered":[false,…], "other_secret":false}, …]}
// "vector" is the spec's test vector signed by the package; "tampered" verifies the same
// headers over the body with one byte changed; "other_secret" with a secret sluice never had.
'use strict';
const fs = require('fs');
const { Webhook } = require('standardwebhooks');

function verifies(secret, body, headers) {
  try {
    new Webhook(secret).verify(body, headers);
    return true;
  } catch (e) {
    return false;
  }
}

const input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const vector = new Webhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')
  .sign('msg_p5jXN8AQM9LWM0D4loKWxJek', new Date(1614265330 * 1000), '{"test": 2432232314}');
const stranger = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
const results = input.deliveries.map((d) => {
  const body = Buffer.from(d.body_b64, 'base64');
  const tampered = Buffer.from(body);
  tampered[tampered.length - 2] ^= 1;
  return {
    id: d.headers['webhook-id'],
    verified: input.secrets.map((s) => verifies(s, body, d.headers)),
    tampered: input.secrets.map((s) => verifies(s, tampered, d.headers)),
    other_secret: verifies(stranger, body, d.headers),
  };
});
process.stdout.write(JSON.stringify({ vector, results }) + '\n');
