-- What the push path pays for the query API's indexes: the same rows inserted (in id order, as
-- pushes arrive) into two copies of sluice_messages, one with the indexes before migration 8
-- (pkey, (queue, partition, id), the transactionId one) and one with those after it (pkey,
-- (queue, eventTime, id), (queue, partition, eventTime, id), the transactionId one); three
-- alternating rounds of :n rows, one statement per 500 rows as the push batcher writes them.
-- psql -v n=N -f index_cost.sql prints "before|after|round|ms" lines and the index sizes.
\set ON_ERROR_STOP on
DROP TABLE IF EXISTS ic_source, ic_before, ic_after;
CREATE TABLE ic_source AS
  SELECT row_number() OVER (ORDER BY id) AS n, * FROM sluice_messages WHERE queue = 'bench'
   ORDER BY id LIMIT :n;
CREATE INDEX ON ic_source (n);
CREATE TABLE ic_before (LIKE sluice_messages INCLUDING DEFAULTS);
CREATE TABLE ic_after (LIKE sluice_messages INCLUDING DEFAULTS);
ALTER TABLE ic_before ADD PRIMARY KEY (id);
ALTER TABLE ic_after ADD PRIMARY KEY (id);
CREATE UNIQUE INDEX ic_before_txn ON ic_before (queue, transaction_id) WHERE transaction_id IS NOT NULL;
CREATE UNIQUE INDEX ic_after_txn ON ic_after (queue, transaction_id) WHERE transaction_id IS NOT NULL;
CREATE INDEX ic_before_queue_partition_id ON ic_before (queue, partition, id);
CREATE INDEX ic_after_queue_time ON ic_after (queue, (coalesce(event_time, created_at)), id);
CREATE INDEX ic_after_queue_partition_time
  ON ic_after (queue, partition, (coalesce(event_time, created_at)), id);
CREATE FUNCTION pg_temp.fill(target regclass, rows bigint) RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz;
  b bigint := 0;
BEGIN
  EXECUTE format('TRUNCATE %s', target);
  t0 := clock_timestamp();
  WHILE b < rows LOOP
    EXECUTE format('INSERT INTO %s (id, queue, partition, namespace, task, trace_id, transaction_id,
                                    payload, created_at, stored_at, event_time)
                    SELECT id, queue, partition, namespace, task, trace_id, transaction_id,
                           payload, created_at, stored_at, event_time
                      FROM ic_source WHERE n > $1 AND n <= $1 + 500', target) USING b;
    b := b + 500;
  END LOOP;
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$;
SELECT 'before', 1, pg_temp.fill('ic_before', :n);
SELECT 'after', 1, pg_temp.fill('ic_after', :n);
SELECT 'before', 2, pg_temp.fill('ic_before', :n);
SELECT 'after', 2, pg_temp.fill('ic_after', :n);
SELECT 'before', 3, pg_temp.fill('ic_before', :n);
SELECT 'after', 3, pg_temp.fill('ic_after', :n);
SELECT 'size', t, pg_indexes_size(t::regclass) FROM (VALUES ('ic_before'), ('ic_after')) v(t);
DROP TABLE ic_source, ic_before, ic_after;
