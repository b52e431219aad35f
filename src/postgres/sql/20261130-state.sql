-- The state store (src/state/pg.ts): every key space of src/state/spaces.ts in
-- one table, keys and values as bytes. bytea sorts bytewise, as LevelDB does,
-- so an ordered walk gives the same order on both backends.
CREATE TABLE IF NOT EXISTS state_kv (
  space text NOT NULL,
  key bytea NOT NULL,
  value bytea NOT NULL,
  PRIMARY KEY (space, key)
);

-- Named locks (StateTransaction.lock): a transaction upserts the row and so
-- holds its lock until it ends; version counts the takes, so that under
-- snapshot isolation (YugabyteDB's default) a concurrent taker fails with
-- 40001 and is retried instead of reading stale data.
CREATE TABLE IF NOT EXISTS state_locks (
  name text PRIMARY KEY,
  version bigint NOT NULL
);
