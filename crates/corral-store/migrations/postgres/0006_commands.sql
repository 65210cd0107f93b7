-- Corral schema v6 (PostgreSQL): Run Command: commands, their invocations (one per managed
-- instance) and the invocations' plugin results. Same conventions as 0001; keep in step with
-- migrations/sqlite/0006_commands.sql.
--
-- A command's status is not stored: the server rolls it up from its invocations when read.

-- One row per command (SendCommand). command_id is a UUID, unique deployment-wide; ids sort
-- in byte order (COLLATE "C", as SQLite's BINARY).
-- instance_ids is the InstanceIds list as given, comma-separated (ids never contain a comma;
-- empty when Targets were used). The *_json columns hold JSON text written by the server.
-- active is true until every invocation is terminal: the scheduler's work list.
CREATE TABLE commands (
    command_id                TEXT    NOT NULL COLLATE "C" PRIMARY KEY,
    account_id                TEXT    NOT NULL REFERENCES accounts (account_id),
    region                    TEXT    NOT NULL,
    document_name             TEXT    NOT NULL,
    document_version          TEXT    NOT NULL,
    comment                   TEXT    NOT NULL,
    parameters_json           TEXT    NOT NULL,
    instance_ids              TEXT    NOT NULL,
    targets_json              TEXT    NOT NULL,
    payload_json              TEXT    NOT NULL,
    requested_at              TIMESTAMPTZ NOT NULL,
    timeout_seconds           BIGINT  NOT NULL,
    execution_timeout_seconds BIGINT  NOT NULL,
    max_concurrency           TEXT    NOT NULL,
    max_errors                TEXT    NOT NULL,
    service_role              TEXT    NOT NULL,
    output_s3_bucket          TEXT    NOT NULL,
    output_s3_prefix          TEXT    NOT NULL,
    requested_by              TEXT    NOT NULL,
    cancel_requested          BOOLEAN NOT NULL,
    active                    BOOLEAN NOT NULL
);
-- ListCommands: newest first within an account and region.
CREATE INDEX commands_by_time ON commands (account_id, region, requested_at DESC, command_id);
-- The scheduler's work list (queries must say `active` literally to use it).
CREATE INDEX commands_active ON commands (requested_at, command_id) WHERE active;

-- One row per (command, instance). account_id, region and requested_at repeat the command's
-- so invocations list and sort without a join. Times other than requested_at are NULL until
-- they happen. Rows change only by compare-and-set on status.
CREATE TABLE command_invocations (
    command_id        TEXT    NOT NULL COLLATE "C" REFERENCES commands (command_id) ON DELETE CASCADE,
    instance_id       TEXT    NOT NULL COLLATE "C",
    account_id        TEXT    NOT NULL,
    region            TEXT    NOT NULL,
    instance_name     TEXT    NOT NULL,
    requested_at      TIMESTAMPTZ NOT NULL,
    status            TEXT    NOT NULL,
    status_details    TEXT    NOT NULL,
    dispatched_at     TIMESTAMPTZ,
    acked_at          TIMESTAMPTZ,
    started_at        TIMESTAMPTZ,
    finished_at       TIMESTAMPTZ,
    response_code     BIGINT  NOT NULL,
    trace_output      TEXT    NOT NULL,
    delivery_attempts BIGINT  NOT NULL CHECK (delivery_attempts >= 0),
    PRIMARY KEY (command_id, instance_id)
);
-- An instance's invocations (ListCommandInvocations with InstanceId, delivery on connect).
CREATE INDEX command_invocations_by_instance ON command_invocations (instance_id, requested_at DESC, command_id);
-- ListCommandInvocations without a filter: the listing order within an account and region.
CREATE INDEX command_invocations_by_time
    ON command_invocations (account_id, region, requested_at DESC, command_id, instance_id);

-- One row per plugin (schema 1.2) or step (schema 2.x) of an invocation, in the order they
-- were first reported (position from 0). Names are unique per invocation; a later report
-- replaces the row of its name and keeps its position.
CREATE TABLE command_invocation_plugins (
    command_id     TEXT    NOT NULL COLLATE "C",
    instance_id    TEXT    NOT NULL COLLATE "C",
    position       BIGINT  NOT NULL CHECK (position >= 0),
    name           TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    status_details TEXT    NOT NULL,
    response_code  BIGINT  NOT NULL,
    started_at     TIMESTAMPTZ,
    finished_at    TIMESTAMPTZ,
    output         TEXT    NOT NULL,
    stdout         TEXT    NOT NULL,
    stderr         TEXT    NOT NULL,
    PRIMARY KEY (command_id, instance_id, position),
    UNIQUE (command_id, instance_id, name),
    FOREIGN KEY (command_id, instance_id) REFERENCES command_invocations (command_id, instance_id)
        ON DELETE CASCADE
);
