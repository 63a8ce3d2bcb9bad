"""The SQLite backend's schema: forward migrations (PRAGMA user_version) and the statements of the hot path."""

from __future__ import annotations

from a2a_server.model import ArtifactEvent, MessageEvent, StatusEvent, TaskState

# Forward migrations: MIGRATIONS[n] takes a database from schema version n to n + 1 (PRAGMA
# user_version), in one transaction. Append new steps; never edit a released one.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE tasks (
            id TEXT PRIMARY KEY,
            created INTEGER NOT NULL UNIQUE,  -- creation order: list() is newest first, like MemoryStore
            context_id TEXT NOT NULL,
            state TEXT NOT NULL,
            updated TEXT NOT NULL,  -- status.timestamp, ISO 8601 UTC, so text order is time order
            owner TEXT NOT NULL,
            dialect TEXT NOT NULL,
            skill TEXT NOT NULL,
            json TEXT NOT NULL)""",
        "CREATE INDEX tasks_by_context ON tasks (context_id, created)",
        "CREATE INDEX tasks_by_state ON tasks (state, created)",
        "CREATE INDEX tasks_by_updated ON tasks (updated)",
        # A rowid table, not WITHOUT ROWID: new rows go to the end of the table and only the small
        # (task_id, seq) index entries land all over the tree. Clustered on (task_id, seq), a commit
        # of 100 concurrent tasks' events rewrote ~100 scattered leaf pages and cost 2-3x more.
        """CREATE TABLE events (
            task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            owner TEXT NOT NULL,
            kind TEXT NOT NULL,  -- which TaskEvent: parsing the right model is 3x faster than the union
            json TEXT NOT NULL,
            PRIMARY KEY (task_id, seq))""",
    ),
]
MIGRATIONS.append(
    (
        # 2: the global order for /a2a/events (the events' INTEGER PRIMARY KEY, never reused: see PURGE), the
        # task's state as of each event (for ?state=), and compact rows: the owner lives on the task, and the
        # event JSON leaves out its task and context ids and every null (a token event: ~400 -> ~160 bytes)
        """CREATE TABLE events_v2 (
            id INTEGER PRIMARY KEY,
            task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            state TEXT,
            kind TEXT NOT NULL,
            json TEXT NOT NULL,
            UNIQUE (task_id, seq))""",
        "INSERT INTO events_v2 (task_id, seq, state, kind, json) SELECT task_id, seq, NULL, kind, json FROM events"
        " ORDER BY rowid",
        "DROP TABLE events",
        "ALTER TABLE events_v2 RENAME TO events",
        # epoch: the fencing token of the task's writer; seq: the last event its snapshot reflects
        "ALTER TABLE tasks ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE tasks ADD COLUMN seq INTEGER NOT NULL DEFAULT 0",
        "UPDATE tasks SET seq = (SELECT COALESCE(MAX(seq), 0) FROM events WHERE events.task_id = tasks.id)",
    )
)
MIGRATIONS.append(
    (
        # 3: push notification configs and each one's delivery state (cursor, attempts, next try) as JSON; no
        # foreign key: a config given with a new task's first message is stored before its task (the run's first
        # write stores that); a purged task takes its configs with it (the trigger)
        """CREATE TABLE push_configs (
            task_id TEXT NOT NULL,
            id TEXT NOT NULL,
            created INTEGER NOT NULL,
            owner TEXT NOT NULL,
            state TEXT NOT NULL,
            json TEXT NOT NULL,
            PRIMARY KEY (task_id, id))""",
        "CREATE INDEX push_configs_by_state ON push_configs (state, created)",
        """CREATE TRIGGER push_configs_of_purged_tasks AFTER DELETE ON tasks
            BEGIN DELETE FROM push_configs WHERE task_id = OLD.id; END""",
    )
)
MIGRATIONS.append(
    (
        # 4: billing channels (issue 12; statements in sqlite_ledger.py). Amounts are decimal TEXT: a deposit may
        # exceed SQLite's 64-bit integers (10^18 base units is one unit of an 18-decimal currency)
        """CREATE TABLE channels (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            deposit TEXT NOT NULL,
            token_rate TEXT NOT NULL,
            model TEXT,
            state TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT,
            closed_at TEXT)""",
        "CREATE TABLE channel_tasks (task_id TEXT PRIMARY KEY, channel_id TEXT NOT NULL REFERENCES channels (id))",
        # the charges of one batch of a task's events, written in the batch's transaction: seq is the first charged
        # event's id (batches never overlap, so (task, seq) is unique), events lists "id:tokens" of each charged
        # event. One row per batch, not per event: a row per event cost ~10 us a token on the hot path. No foreign
        # key to the events: the ledger outlives the retention purge of finished tasks
        """CREATE TABLE charges (
            task_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            channel_id TEXT NOT NULL REFERENCES channels (id),
            tokens INTEGER NOT NULL,
            amount TEXT NOT NULL,
            events TEXT NOT NULL,
            voided INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (task_id, seq))""",
    )
)
SCHEMA_VERSION = len(MIGRATIONS)

KINDS: dict[str, type[StatusEvent] | type[ArtifactEvent] | type[MessageEvent]] = {
    "status": StatusEvent,
    "artifact": ArtifactEvent,
    "message": MessageEvent,
}
KIND_OF = {cls: kind for kind, cls in KINDS.items()}
UNSETTLED = tuple(s.value for s in TaskState if not s.settled)
TERMINAL = tuple(s.value for s in TaskState if s.terminal)
INSERT_TASK = """INSERT INTO tasks (id, created, context_id, state, updated, owner, dialect, skill, json, epoch, seq)
    VALUES (?1, (SELECT COALESCE(MAX(created), 0) + 1 FROM tasks), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0)"""
# the first write of a run that stores its new task (Job.create): a task stored meanwhile stays as it is
INSERT_OR_KEEP_TASK = INSERT_TASK.replace("INSERT INTO", "INSERT OR IGNORE INTO", 1)
# a snapshot is written only by the task's current writer (its epoch), with the id of its newest event
UPDATE_TASK = """UPDATE tasks SET state = ?2, updated = ?3, json = ?4,
    seq = COALESCE((SELECT MAX(seq) FROM events WHERE task_id = ?1), 0) WHERE id = ?1 AND epoch = ?5"""
# ids are given explicitly, one batch at a time (executemany): ~10 µs an event, against ~28 µs for an INSERT …
# SELECT MAX(seq) + 1 per row; the writer checked the task's epoch in the same transaction
APPEND = "INSERT INTO events (id, task_id, seq, state, kind, json) VALUES (?, ?, ?, ?, ?, ?)"
# Retention never deletes the task of the newest event: SQLite gives a new row MAX(id) + 1, so keeping the
# newest row keeps every cursor a client holds from being handed out again
PURGE = """DELETE FROM tasks WHERE state IN ({terminal}) AND updated < ?
    AND id IS NOT (SELECT task_id FROM events ORDER BY id DESC LIMIT 1)"""


