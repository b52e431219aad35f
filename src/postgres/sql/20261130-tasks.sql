-- Cluster nodes and the work they share (src/cluster/machines.ts, src/cluster/tasks.ts).
-- All times are the database server's clock, so nodes with skewed clocks agree.

-- One row per running node. A node silent for its dead-after is deleted by
-- whichever node notices; its claimed tasks are then freed (owner ON DELETE SET NULL).
CREATE TABLE IF NOT EXISTS cluster_machines (
  id bigserial PRIMARY KEY,
  name text NOT NULL UNIQUE,
  address text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- Work to do. owner is NULL while a task waits; a claim sets it in one
-- UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED LIMIT n). A task that
-- fails waits until retry_at; one that failed max_attempts times is given up.
CREATE TABLE IF NOT EXISTS cluster_tasks (
  id bigserial PRIMARY KEY,
  type text NOT NULL,
  payload jsonb NOT NULL DEFAULT '{}',
  -- at most one live task per dedupe key (e.g. "copy piece X"), when given
  dedupe text UNIQUE,
  owner bigint REFERENCES cluster_machines (id) ON DELETE SET NULL,
  attempts integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL,
  posted_at timestamptz NOT NULL DEFAULT now(),
  retry_at timestamptz NOT NULL DEFAULT now(),
  claimed_at timestamptz,
  given_up_at timestamptz,
  last_error text
);
CREATE INDEX IF NOT EXISTS cluster_tasks_waiting ON cluster_tasks (retry_at, id) WHERE owner IS NULL AND given_up_at IS NULL;
CREATE INDEX IF NOT EXISTS cluster_tasks_owner ON cluster_tasks (owner);

-- One row per run of a task: who ran it, when, and how it ended
-- (done; failed; stopped: its node stopped before it ended, the attempt not counted;
-- lost: the node found the task was no longer its own).
CREATE TABLE IF NOT EXISTS cluster_task_history (
  id bigserial PRIMARY KEY,
  task_id bigint NOT NULL,
  type text NOT NULL,
  machine_id bigint NOT NULL,
  machine_name text NOT NULL,
  attempt integer NOT NULL,
  started_at timestamptz NOT NULL,
  ended_at timestamptz NOT NULL,
  result text NOT NULL CHECK (result IN ('done', 'failed', 'stopped', 'lost')),
  error text
);
CREATE INDEX IF NOT EXISTS cluster_task_history_task ON cluster_task_history (task_id);
