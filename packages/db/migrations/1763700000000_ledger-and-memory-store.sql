-- Up Migration

-- The ledger: one row per message that reached a final state, the permanent record behind dedupe
-- and GET /v1/messages/{id} once the Redis status expires.
CREATE TABLE ledger (
  tenant            text        NOT NULL,
  client_message_id text        NOT NULL,
  thread_id         text        NOT NULL,
  user_id           text        NOT NULL,
  seq               bigint      NOT NULL,
  status            text        NOT NULL CHECK (status IN ('written', 'dead')),
  attempts          integer     NOT NULL DEFAULT 0,
  error             text,
  backend           text        NOT NULL,
  accepted_at       timestamptz NOT NULL,
  written_at        timestamptz,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, client_message_id)
);
CREATE INDEX ledger_thread_seq ON ledger (tenant, thread_id, seq);
CREATE INDEX ledger_user ON ledger (tenant, user_id);

-- The postgres memory backend (MEMORY_BACKEND=postgres).
CREATE TABLE memory_users (
  tenant     text        NOT NULL,
  user_id    text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, user_id)
);

CREATE TABLE memory_threads (
  tenant     text        NOT NULL,
  thread_id  text        NOT NULL,
  user_id    text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, thread_id),
  FOREIGN KEY (tenant, user_id) REFERENCES memory_users (tenant, user_id) ON DELETE CASCADE
);

-- id is the insertion order: the order messages landed in the store.
CREATE TABLE memory_messages (
  id                bigserial   PRIMARY KEY,
  tenant            text        NOT NULL,
  thread_id         text        NOT NULL,
  client_message_id text        NOT NULL,
  role              text        NOT NULL,
  name              text,
  content           text        NOT NULL,
  metadata          jsonb       NOT NULL DEFAULT '{}'::jsonb,
  created_at        timestamptz NOT NULL,
  stored_at         timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant, client_message_id),
  FOREIGN KEY (tenant, thread_id) REFERENCES memory_threads (tenant, thread_id) ON DELETE CASCADE
);
CREATE INDEX memory_messages_thread ON memory_messages (tenant, thread_id, id);

-- Down Migration

DROP TABLE memory_messages;
DROP TABLE memory_threads;
DROP TABLE memory_users;
DROP TABLE ledger;
