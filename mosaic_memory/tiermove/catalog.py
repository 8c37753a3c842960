"""What a database holds, read from PostgreSQL's own catalog: tables in foreign-key order, their
copied columns and keys, row counts and per-table checksums.

The catalog, not the models, is the source of truth here: ``migrate-tier`` must move every table
a migration created, including ones no model maps. Checksums are computed in SQL on each side
from the rows' text forms under fixed session settings (``SESSION_SETTINGS``), so two servers with
other time zones or collations agree exactly when their rows do, vectors included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql

__all__ = [
    "SESSION_SETTINGS",
    "TableChecksum",
    "TableInfo",
    "checksums",
    "column_type",
    "read_tables",
    "table_names",
]

# Text forms depend on these; both sides of a copy or a checksum set them the same way.
SESSION_SETTINGS = (
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET extra_float_digits = 1",
)
SKIPPED_TABLES = ("alembic_version",)  # written by the migrations on each side, never copied


@dataclass(frozen=True)
class TableInfo:
    """One table: the columns a copy moves (generated ones are recomputed by the target), its
    primary key, which keys need ``COLLATE "C"`` to order alike on every server, and which
    columns are identity columns (inserted with ``OVERRIDING SYSTEM VALUE``, never updated)."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    collatable_keys: frozenset[str]
    identity: frozenset[str]

    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.name)

    def cols(self, prefix: str | None = None) -> sql.Composable:
        if prefix is None:
            return sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)
        return sql.SQL(", ").join(sql.Identifier(prefix, c) for c in self.columns)

    def ordered_key(self, prefix: str | None = None) -> list[sql.Composable]:
        """The key columns as sort expressions that order the same on every server."""
        out: list[sql.Composable] = []
        for c in self.key:
            ref: sql.Composable = sql.Identifier(prefix, c) if prefix else sql.Identifier(c)
            out.append(sql.SQL('{} COLLATE "C"').format(ref) if c in self.collatable_keys else ref)
        return out


@dataclass(frozen=True)
class TableChecksum:
    rows: int
    md5: str


async def table_names(conn: AsyncConnection[Any]) -> list[str]:
    """The ordinary tables of the ``public`` schema, ``alembic_version`` left out."""
    cur = await conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname"
    )
    return [str(r[0]) for r in await cur.fetchall() if r[0] not in SKIPPED_TABLES]


def _fk_order(names: Sequence[str], edges: Sequence[tuple[str, str]]) -> list[str]:
    """Parents before children (a table's self-reference does not count); ties by name."""
    parents: dict[str, set[str]] = {n: set() for n in names}
    for child, parent in edges:
        if child in parents and parent in parents and child != parent:
            parents[child].add(parent)
    ordered: list[str] = []
    placed: set[str] = set()
    while len(ordered) < len(names):
        ready = sorted(n for n in names if n not in placed and parents[n] <= placed)
        if not ready:  # a cycle: place the rest by name; the copy's constraints will say if it matters
            ready = sorted(n for n in names if n not in placed)
        for n in ready:
            ordered.append(n)
            placed.add(n)
    return ordered


async def read_tables(conn: AsyncConnection[Any]) -> list[TableInfo]:
    """Every table to copy, parents before children. Raises ValueError for a table without a
    primary key (its rows could not be upserted, so a re-run would double them)."""
    names = await table_names(conn)
    cur = await conn.execute(
        "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
        "WHERE contype = 'f' AND connamespace = 'public'::regnamespace"
    )
    edges = [(str(a).strip('"'), str(b).strip('"')) for a, b in await cur.fetchall()]
    tables = []
    for name in _fk_order(names, edges):
        cur = await conn.execute(
            "SELECT a.attname, a.attidentity, a.attgenerated FROM pg_attribute a "
            "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (f'public."{name}"',),
        )
        rows = await cur.fetchall()
        columns = tuple(str(r[0]) for r in rows if not r[2])
        identity = frozenset(str(r[0]) for r in rows if r[1])
        cur = await conn.execute(
            "SELECT a.attname, a.attcollation <> 0 FROM pg_index i "
            "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.ord",
            (f'public."{name}"',),
        )
        key_rows = await cur.fetchall()
        if not key_rows:
            raise ValueError(f"table {name} has no primary key, so it cannot be copied idempotently")
        tables.append(
            TableInfo(
                name=name,
                columns=columns,
                key=tuple(str(r[0]) for r in key_rows),
                collatable_keys=frozenset(str(r[0]) for r in key_rows if r[1]),
                identity=identity,
            )
        )
    return tables


async def column_type(conn: AsyncConnection[Any], table: str, column: str) -> str | None:
    """``format_type`` of a column (``vector(384)``), or None when there is no such column."""
    cur = await conn.execute(
        "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relname = %s AND a.attname = %s AND NOT a.attisdropped",
        (table, column),
    )
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def checksums(conn: AsyncConnection[Any], tables: Sequence[TableInfo]) -> dict[str, TableChecksum]:
    """Row count and an md5 over the sorted md5s of each row's text form (copied columns only),
    per table. Independent of physical order, keys and collation; any changed value, vector
    element, missing or extra row changes it."""
    for stmt in SESSION_SETTINGS:
        await conn.execute(stmt)
    out: dict[str, TableChecksum] = {}
    for table in tables:
        query = sql.SQL(
            "SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h COLLATE \"C\")), '') "
            "FROM (SELECT md5(ROW({cols})::text) AS h FROM {table}) AS rows"
        ).format(cols=table.cols(), table=table.ident())
        cur = await conn.execute(query)
        row = await cur.fetchone()
        assert row is not None
        out[table.name] = TableChecksum(int(row[0]), str(row[1]))
    return out
