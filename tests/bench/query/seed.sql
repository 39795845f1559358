-- The query benchmark's data: :rows messages in queue 'bench' over 1,000 partitions and 30
-- days (uuidv7 ids that sort with created_at, as sluice mints them), every tenth with an
-- event_time an hour before its acceptance (ingested rows), 1,000 unpublished rows in the
-- relay outbox, 100 dead letters, and 20 small queues beside it. psql -v rows=N -f seed.sql
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO sluice_messages (id, queue, partition, trace_id, transaction_id, payload, created_at,
                             event_time)
SELECT (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7' ||
        substr(md5(i::text), 1, 3) || '8' || substr(md5(i::text), 4, 15))::uuid,
       'bench', 'dev-' || lpad((i % 1000)::text, 4, '0'), 'trace-' || i, 'txn-' || i,
       json_build_object('device', i % 1000, 'seq', i, 'temperature', 20 + (i % 150) / 10.0,
                         'note', repeat('x', 120)),
       t, CASE WHEN i % 10 = 0 THEN t - interval '1 hour' END
  FROM (SELECT i, timestamptz '2026-11-01 00:00:00+00' +
                  (i::double precision / :rows) * interval '30 days' AS t
          FROM generate_series(1, :rows) AS i) s;
INSERT INTO sluice_messages (id, queue, partition, payload, created_at)
SELECT (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7' ||
        substr(md5('s' || i), 1, 3) || '8' || substr(md5('s' || i), 4, 15))::uuid,
       'small-' || (i % 20), 'p' || (i % 3), json_build_object('i', i), t
  FROM generate_series(1, 2000) AS i,
       LATERAL (SELECT timestamptz '2026-11-01 00:00:00+00' + i * interval '1 minute') x(t);
INSERT INTO sluice_relay_outbox (id)
SELECT id FROM sluice_messages WHERE queue = 'bench' ORDER BY id DESC LIMIT 1000;
INSERT INTO sluice_dead_letters (id, queue, subscription, reason, last_status, attempts,
                                 first_attempt_at, last_attempt_at, partition, headers,
                                 created_ms, payload)
SELECT id, 'bench', 'hook', 'attempts_exhausted', 500, 5, now(), now(), partition, '{}',
       (extract(epoch FROM created_at) * 1000)::bigint, convert_to(payload::text, 'UTF8')
  FROM sluice_messages WHERE queue = 'bench' ORDER BY id LIMIT 100;
COMMIT;
VACUUM ANALYZE sluice_messages;
VACUUM ANALYZE sluice_relay_outbox;
VACUUM ANALYZE sluice_dead_letters;
