-- The indexer's index on PostgreSQL (src/routing/pg-index.ts), the same
-- shape as the LevelDB one (src/routing/level-index.ts): providers and
-- contexts get small numbers, each (multihash, provider, context) is one row,
-- and each advertisement's multihashes are also kept as one row of their
-- context, for withdrawing them by primary key.

-- Provider numbers and context numbers. A chain restart gives the provider a
-- new number; the old one is listed in indexer_retired and its rows swept.
CREATE SEQUENCE IF NOT EXISTS indexer_numbers;

CREATE TABLE IF NOT EXISTS indexer_providers (
  peer_id text PRIMARY KEY,
  n bigint NOT NULL UNIQUE,
  addresses text[] NOT NULL,
  -- the CID of its latest applied advertisement ('' while the first is being applied)
  head text NOT NULL,
  updated_at bigint NOT NULL,
  -- live (multihash, context) rows under n
  entries bigint NOT NULL
);

-- Advertisements applied per provider (a replay is a no-op).
CREATE TABLE IF NOT EXISTS indexer_ads (
  peer_id text NOT NULL,
  ad text NOT NULL,
  PRIMARY KEY (peer_id, ad)
);

CREATE TABLE IF NOT EXISTS indexer_contexts (
  provider bigint NOT NULL,
  id bytea NOT NULL,
  c bigint NOT NULL UNIQUE,
  metadata bytea NOT NULL,
  PRIMARY KEY (provider, id)
);

-- The multihashes each advertisement added to a context, one row per advertisement.
CREATE TABLE IF NOT EXISTS indexer_context_parts (
  context bigint NOT NULL,
  part integer NOT NULL,
  multihashes bytea[] NOT NULL,
  PRIMARY KEY (context, part)
);

-- Lookups: one primary-key range on multihash. bytea compares bytewise, so a
-- multihash's rows are contiguous, as in LevelDB.
CREATE TABLE IF NOT EXISTS indexer_entries (
  multihash bytea NOT NULL,
  provider bigint NOT NULL,
  context bigint NOT NULL,
  PRIMARY KEY (multihash, provider, context)
);

CREATE TABLE IF NOT EXISTS indexer_retired (
  provider bigint PRIMARY KEY
);
