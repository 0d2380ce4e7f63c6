"""Threads and messages in SQLite, owned by users.

Every query takes the owner, so isolation is a property of the storage layer
rather than something each handler must remember. One connection is shared
across threads behind a lock: local SQLite answers in microseconds, which is
cheaper than a thread hop per query.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "MessageRecord",
    "Store",
    "ThreadRecord",
    "new_id",
    "utc_now",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS threads (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS threads_owner ON threads (owner);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    thread_id TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_thread ON messages (thread_id, seq);
"""


def utc_now() -> str:
    """An RFC 3339 timestamp in UTC with millisecond precision."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    """A random id such as ``thread_3f9a2c1b7d4e`` matching the spec's id patterns."""
    return f"{prefix}_{secrets.token_hex(6)}"


@dataclass(frozen=True, slots=True)
class ThreadRecord:
    id: str
    owner: str
    title: str
    metadata: Mapping[str, str]
    created_at: str
    updated_at: str
    message_count: int


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: str
    thread_id: str
    role: str
    content: str
    created_at: str

    def as_json(self) -> dict[str, str]:
        """The spec's ``Message`` representation."""
        return {
            "id": self.id,
            "thread_id": self.thread_id,
            "role": self.role,
            "content": self.content,
            "created_at": self.created_at,
        }


_THREAD_COLUMNS = (
    "t.id, t.owner, t.title, t.metadata, t.created_at, t.updated_at, "
    "(SELECT COUNT(*) FROM messages m WHERE m.thread_id = t.id)"
)


class Store:
    """Thread-safe access to one SQLite database (``:memory:`` or a file)."""

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA foreign_keys = ON")
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # threads

    def create_thread(
        self, owner: str, title: str, metadata: Mapping[str, str] | None = None
    ) -> ThreadRecord:
        now = utc_now()
        thread_id = new_id("thread")
        with self._lock:
            self._db.execute(
                "INSERT INTO threads VALUES (?, ?, ?, ?, ?, ?)",
                (thread_id, owner, title, json.dumps(dict(metadata or {})), now, now),
            )
        return ThreadRecord(thread_id, owner, title, dict(metadata or {}), now, now, 0)

    def get_thread(self, thread_id: str, owner: str | None) -> ThreadRecord | None:
        """The thread if ``owner`` owns it; ``owner=None`` skips the check (a fault profile)."""
        query = f"SELECT {_THREAD_COLUMNS} FROM threads t WHERE t.id = ?"
        args: tuple[str, ...] = (thread_id,)
        if owner is not None:
            query += " AND t.owner = ?"
            args += (owner,)
        with self._lock:
            row = self._db.execute(query, args).fetchone()
        return _thread(row) if row else None

    def list_threads(self, owner: str, limit: int, offset: int) -> tuple[list[ThreadRecord], int]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_THREAD_COLUMNS} FROM threads t WHERE t.owner = ? "
                "ORDER BY t.created_at DESC, t.rowid DESC LIMIT ? OFFSET ?",
                (owner, limit, offset),
            ).fetchall()
            (total,) = self._db.execute(
                "SELECT COUNT(*) FROM threads WHERE owner = ?", (owner,)
            ).fetchone()
        return [_thread(r) for r in rows], int(total)

    def update_thread(
        self,
        thread_id: str,
        owner: str,
        *,
        title: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ThreadRecord | None:
        with self._lock:
            cursor = self._db.execute(
                "UPDATE threads SET title = COALESCE(?, title), "
                "metadata = COALESCE(?, metadata), updated_at = ? WHERE id = ? AND owner = ?",
                (
                    title,
                    None if metadata is None else json.dumps(dict(metadata)),
                    utc_now(),
                    thread_id,
                    owner,
                ),
            )
            changed = cursor.rowcount
        return self.get_thread(thread_id, owner) if changed else None

    def delete_thread(self, thread_id: str, owner: str) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM threads WHERE id = ? AND owner = ?", (thread_id, owner)
            )
            return cursor.rowcount > 0

    # messages

    def add_message(self, thread_id: str, role: str, content: str) -> MessageRecord:
        now = utc_now()
        message_id = new_id("msg")
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute(
                    "INSERT INTO messages (id, thread_id, role, content, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (message_id, thread_id, role, content, now),
                )
                self._db.execute("UPDATE threads SET updated_at = ? WHERE id = ?", (now, thread_id))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return MessageRecord(message_id, thread_id, role, content, now)

    def list_messages(
        self, thread_id: str, limit: int, offset: int
    ) -> tuple[list[MessageRecord], int]:
        """Oldest first. Ownership is the caller's check (it already holds the thread)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, thread_id, role, content, created_at FROM messages "
                "WHERE thread_id = ? ORDER BY seq LIMIT ? OFFSET ?",
                (thread_id, limit, offset),
            ).fetchall()
            (total,) = self._db.execute(
                "SELECT COUNT(*) FROM messages WHERE thread_id = ?", (thread_id,)
            ).fetchone()
        return [MessageRecord(*r) for r in rows], int(total)

    def recent_messages(self, thread_id: str, limit: int) -> list[MessageRecord]:
        """The last ``limit`` messages, oldest first (a history window)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, thread_id, role, content, created_at FROM messages "
                "WHERE thread_id = ? ORDER BY seq DESC LIMIT ?",
                (thread_id, limit),
            ).fetchall()
        return [MessageRecord(*r) for r in reversed(rows)]


def _thread(row: tuple[str, str, str, str, str, str, int]) -> ThreadRecord:
    thread_id, owner, title, metadata, created, updated, count = row
    return ThreadRecord(thread_id, owner, title, json.loads(metadata), created, updated, int(count))
