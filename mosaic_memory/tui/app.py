"""The Mosaic Memory TUI: search as you type, browse and correct memory, review the jobs ledger.

A client of the running service (``MOSAIC_URL``, ``MOSAIC_API_KEY``) through the Python client;
every request runs in a worker, so typing never waits on the network, and an answer to a query
that has since changed is dropped.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Static, Tab, Tabs

from mosaic_memory.client import AsyncMosaicClient, MosaicClientError
from mosaic_memory.insights.schemas import InsightOut
from mosaic_memory.logs.schemas import LogOut
from mosaic_memory.preferences.schemas import PreferenceOut
from mosaic_memory.tui.backend import KINDS, MODES, Backend, Item, KindName, Row, edit_fields, new_fields
from mosaic_memory.tui.screens import ConfirmScreen, EditScreen, HelpScreen, JobsScreen, ListScreen
from mosaic_memory.tui.views import change_line, item_detail, log_line, one_line

__all__ = ["MemoryScreen", "MosaicApp"]

DEBOUNCE_SECONDS = 0.25  # typing pauses shorter than this do not send a request

CSS = """
#bar { height: 3; }
#query { width: 1fr; }
#owner { width: auto; min-width: 30; padding: 1 1 0 1; color: $text-muted; }
#main { height: 1fr; }
#results { width: 2fr; }
#detail-pane { width: 1fr; border-left: vkey $primary; padding: 0 1; }
#status, #jobs-status { height: 1; padding: 0 1; color: $text-muted; }
.dialog { width: 80%; max-width: 110; height: auto; max-height: 90%; border: thick $primary;
          background: $surface; padding: 1 2; }
HelpScreen, ConfirmScreen, EditScreen, ListScreen { align: center middle; }
#list { height: 80%; }
#list-table { height: 1fr; }
.title { text-style: bold; margin-bottom: 1; }
.section { text-style: bold; margin-top: 1; }
.field-label { margin-top: 1; }
TextArea.field { height: 8; }
#edit-error { margin-top: 1; }
.buttons { height: auto; margin-top: 1; }
.buttons Button { margin-right: 2; }
#jobs-main { height: 1fr; }
#jobs-left { width: 2fr; }
#jobs { height: auto; max-height: 12; }
#runs { height: 1fr; }
#run-pane { width: 1fr; border-left: vkey $primary; padding: 0 1; }
"""


class SearchBox(Input):
    """The query box; its keys are the ones that still work while typing."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "screen.focus_results", "Results", key_display="esc"),
        Binding("down", "screen.focus_results", "Results", show=False),
        Binding("f2", "screen.next_kind", "Kind"),
        Binding("f3", "screen.next_owner", "Owner"),
        Binding("f4", "screen.next_mode", "Mode"),
        Binding("f1", "app.help", "Help"),
    ]


class MemoryScreen(Screen[None]):
    """Search, the results list and the detail pane; edit, delete, sources; the way to the jobs."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("slash", "focus_search", "Search", key_display="/"),
        Binding("1", "kind('insights')", "Insights", show=False),
        Binding("2", "kind('preferences')", "Preferences", show=False),
        Binding("3", "kind('skills')", "Skills", show=False),
        Binding("4", "kind('logs')", "Logs", show=False),
        Binding("k", "next_kind", "Kind 1-4"),
        Binding("o", "next_owner", "Owner"),
        Binding("m", "next_mode", "Mode"),
        Binding("a", "new", "Add"),
        Binding("e", "edit", "Edit"),
        Binding("d", "delete", "Delete"),
        Binding("s", "more", "Sources/history"),
        Binding("j", "jobs", "Jobs"),
        Binding("r", "reload", "Reload"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.kind: KindName = "insights"
        self.owners: list[str | None] = [None]  # None: every owner the key may read
        self.owner: str | None = None
        self.mode = "hybrid"  # the search mode: hybrid, semantic or keyword
        self.rows: list[Row] = []
        self.keep_id: str | None = None  # the item to select again once the rows come back
        self.user = ""  # the key's user name, once /v1/me answered
        self.item: Item | None = None  # the full item shown in the detail pane
        self.generation = 0  # bumped per request for the results; older answers are dropped
        self._debounce: Timer | None = None

    # layout ------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        yield Tabs(*(Tab(f"{i}:{kind.title()}", id=kind) for i, kind in enumerate(KINDS, 1)), id="kinds")
        with Horizontal(id="bar"):
            yield SearchBox(placeholder="Search insights (empty: the newest)", id="query")
            yield Static("hybrid · owner: all", id="owner")
        with Horizontal(id="main"):
            table: DataTable[str] = DataTable(id="results", cursor_type="row", zebra_stripes=True)
            yield table
            with VerticalScroll(id="detail-pane"):
                yield Static("Nothing selected.", id="detail")
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.app.sub_title = self.backend.url
        self.query_one("#query", Input).focus()
        self.load_identity()
        self.reload()

    @property
    def busy(self) -> bool:
        """A request is pending or in flight (tests wait for this to clear)."""
        return self._debounce is not None

    def status(self, text: str, error: bool = False) -> None:
        self.query_one("#status", Static).update(Text(text, style="bold red" if error else ""))

    def failed(self, exc: MosaicClientError) -> None:
        line = f"{exc.error}: {exc.detail}" if exc.status else exc.detail
        self.status(line, error=True)
        self.app.notify(line, severity="error", title="The service said no" if exc.status else "Unreachable")

    # identity and owners ---------------------------------------------------------------------
    @work(group="identity", exit_on_error=False)
    async def load_identity(self) -> None:
        try:
            me = await self.backend.whoami()
        except MosaicClientError as exc:
            self.failed(exc)
            return
        self.owners = [None, *me.get("owners", [])]
        self.user = str(me.get("user") or "")
        self.app.sub_title = f"{me.get('user')} · {', '.join(me.get('scopes', []))} · {self.backend.url}"

    def action_next_owner(self) -> None:
        index = self.owners.index(self.owner) if self.owner in self.owners else 0
        self.owner = self.owners[(index + 1) % len(self.owners)]
        self.show_scope()
        self.reload()

    def action_next_mode(self) -> None:
        self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]
        self.show_scope()
        self.reload()

    def show_scope(self) -> None:
        self.query_one("#owner", Static).update(f"{self.mode} · owner: {self.owner or 'all'}")

    # kinds -----------------------------------------------------------------------------------
    def action_kind(self, kind: str) -> None:
        self.query_one("#kinds", Tabs).active = kind  # TabActivated reloads

    def action_next_kind(self) -> None:
        self.action_kind(KINDS[(KINDS.index(self.kind) + 1) % len(KINDS)])

    @on(Tabs.TabActivated, "#kinds")
    def kind_changed(self, event: Tabs.TabActivated) -> None:
        kind = event.tab.id
        if kind not in KINDS or kind == self.kind:
            return
        self.kind = kind
        self.query_one("#query", Input).placeholder = f"Search {kind} (empty: the newest)"
        self.reload()

    # search as you type ----------------------------------------------------------------------
    @on(Input.Changed, "#query")
    def query_changed(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(DEBOUNCE_SECONDS, self.reload)

    @on(Input.Submitted, "#query")
    def query_submitted(self) -> None:
        self.reload()
        self.query_one("#results", DataTable).focus()

    def action_focus_search(self) -> None:
        self.query_one("#query", Input).focus()

    def action_focus_results(self) -> None:
        self.query_one("#results", DataTable).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # "/" goes to the search box: pointless (and hidden) while typing in it
        return not (action == "focus_search" and isinstance(self.focused, Input))

    def action_reload(self) -> None:
        self.reload(keep=self.selected_id())

    def selected_id(self) -> str | None:
        row = self.selected_row()
        return row.id if row is not None else None

    def reload(self, keep: str | None = None) -> None:
        """Ask for the rows again; ``keep``: the id to put the cursor back on, if it is still there."""
        self.keep_id = keep
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        self.generation += 1
        query = self.query_one("#query", Input).value
        self.status(f"Searching {self.kind} for {query!r}…" if query.strip() else f"Loading {self.kind}…")
        self.load_rows(self.generation, self.kind, query, self.owner, self.mode)

    @work(exclusive=True, group="rows", exit_on_error=False)
    async def load_rows(self, generation: int, kind: KindName, query: str, owner: str | None, mode: str) -> None:
        try:
            rows = await self.backend.rows(kind, query, owner, mode)
        except MosaicClientError as exc:
            if generation == self.generation:
                self.failed(exc)
            return
        if generation != self.generation:
            return  # the query, kind or owner changed meanwhile: a newer request owns the list
        self.show_rows(rows, query)

    def show_rows(self, rows: list[Row], query: str) -> None:
        self.rows = rows
        table: DataTable[str] = self.query_one("#results", DataTable)
        table.clear(columns=True)
        searching = bool(query.strip())
        # fixed widths: the text column takes what the others leave (no sideways scrolling)
        others = {"score": 5} if searching else {}
        others |= {"tags": 14, "owner": 16, "date": 10}
        room = (table.size.width or 90) - sum(w + 2 for w in others.values()) - 4
        text_width = max(20, room)
        if searching:
            table.add_column("score", width=others["score"])
        table.add_column("text", width=text_width)
        for name in ("tags", "owner", "date"):
            table.add_column(name, width=others[name])
        me = f"user:{self.user}" if self.user else None
        for row in rows:
            cells = [
                one_line(row.text, text_width),
                one_line(", ".join(row.tags), others["tags"]),
                "me" if row.owner == me else one_line(row.owner, others["owner"]),
                row.when.astimezone().strftime("%Y-%m-%d"),
            ]
            if searching:
                cells.insert(0, f"{row.score:.2f}" if row.score is not None else "")
            table.add_row(*cells, key=row.id)
        where = f" of {self.owner}" if self.owner else ""
        if searching:
            self.status(f"{len(rows)} {self.kind}{where} found for {query!r} ({self.mode})")
        else:
            order = {"logs": "oldest first", "preferences": "by key"}.get(self.kind, "newest first")
            self.status(f"{len(rows)} {self.kind}{where}, {order}. Type to search · esc: the list · ?: help")
        if rows:
            at = next((i for i, r in enumerate(rows) if r.id == self.keep_id), 0)
            table.move_cursor(row=at)
            self.load_item(rows[at])
        else:
            self.item = None
            self.query_one("#detail", Static).update("Nothing here." if not searching else "No match.")

    # the detail pane -------------------------------------------------------------------------
    @on(DataTable.RowHighlighted, "#results")
    def row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        row = self.row_for(event.row_key.value)
        if row is not None and (self.item is None or str(self.item.id) != row.id):
            self.load_item(row)

    def row_for(self, row_id: str | None) -> Row | None:
        return next((r for r in self.rows if r.id == row_id), None)

    def selected_row(self) -> Row | None:
        table: DataTable[str] = self.query_one("#results", DataTable)
        if not self.rows or not 0 <= table.cursor_row < len(self.rows):
            return None
        return self.rows[table.cursor_row]

    @work(exclusive=True, group="detail", exit_on_error=False)
    async def load_item(self, row: Row) -> None:
        try:
            item = await self.backend.item(row)
        except MosaicClientError as exc:
            self.failed(exc)
            return
        if self.selected_row() != row:
            return  # the cursor moved on
        self.item = item
        self.query_one("#detail", Static).update(item_detail(item))

    def current(self) -> Item | None:
        row = self.selected_row()
        if row is None or self.item is None or str(self.item.id) != row.id:
            self.status("select an item first (its details show on the right)", error=True)
            return None
        return self.item

    # edit, delete, sources -------------------------------------------------------------------
    def action_edit(self) -> None:
        item = self.current()
        if item is None:
            return
        if not edit_fields(item):
            self.status("agent logs are append-only: they cannot be edited", error=True)
            return

        def answered(changes: dict[str, Any] | None) -> None:
            if changes:
                self.save(item, changes)
            elif changes is not None:
                self.status("nothing changed")

        noun = self.kind.removesuffix("s")
        self.app.push_screen(EditScreen(f"Edit {noun}", edit_fields(item)), answered)

    def action_new(self) -> None:
        fields = new_fields(self.kind)
        if not fields:
            self.status("agent logs are written by agents, not here", error=True)
            return
        owner = self.owner

        def answered(values: dict[str, Any] | None) -> None:
            if values:
                self.create(self.kind, values, owner)

        title = f"New {self.kind.removesuffix('s')} for {owner or 'you'}"
        self.app.push_screen(EditScreen(title, fields, changed_only=False), answered)

    @work(group="write", exit_on_error=False)
    async def create(self, kind: KindName, values: dict[str, Any], owner: str | None) -> None:
        try:
            stored = await self.backend.create(kind, values, owner)
        except MosaicClientError as exc:
            self.failed(exc)
            return
        self.app.notify(f"stored for {stored.owner}")
        self.reload(keep=str(stored.id))

    @work(group="write", exit_on_error=False)
    async def save(self, item: Item, changes: dict[str, Any]) -> None:
        try:
            stored = await self.backend.update(item, changes)
        except MosaicClientError as exc:
            self.failed(exc)
            return
        self.app.notify(f"saved: {', '.join(changes)}")
        if str(stored.id) == str(item.id):
            self.item = stored
            self.query_one("#detail", Static).update(item_detail(stored))
        self.reload(keep=self.selected_id())

    def action_delete(self) -> None:
        item = self.current()
        if item is None:
            return
        if isinstance(item, LogOut):
            self.status("agent logs are append-only: they cannot be deleted", error=True)
            return
        row = self.selected_row()
        label = one_line(row.text if row else str(item.id), 70)

        def answered(yes: bool | None) -> None:
            if yes:
                self.delete_item(item)
            else:
                self.status("not deleted")

        self.app.push_screen(ConfirmScreen(f"Delete this {self.kind.removesuffix('s')}?\n\n{label}"), answered)

    @work(group="write", exit_on_error=False)
    async def delete_item(self, item: Item) -> None:
        try:
            await self.backend.delete(item)
        except MosaicClientError as exc:
            self.failed(exc)
            return
        self.app.notify("deleted")
        self.item = None
        self.reload()

    def action_more(self) -> None:
        item = self.current()
        if item is not None:
            self.open_more(item)

    @work(group="more", exclusive=True, exit_on_error=False)
    async def open_more(self, item: Item) -> None:
        try:
            if isinstance(item, InsightOut):
                logs = await self.backend.sources(item.id)
                screen = ListScreen(
                    f"Sources of: {one_line(item.content, 70)}",
                    ("occurred", "session", "agent", "content"),
                    [log_line(x) for x in logs],
                    "No sources: this insight was not summarized from agent logs.",
                )
            elif isinstance(item, PreferenceOut):
                changes = await self.backend.history(item)
                screen = ListScreen(
                    f"History of {item.key}" + (f" [{item.scope}]" if item.scope else ""),
                    ("changed", "action", "old → new", "by"),
                    [change_line(c) for c in changes],
                    "No history.",
                )
            elif isinstance(item, LogOut) and item.session_id:
                logs = await self.backend.session_logs(item.session_id, item.owner)
                screen = ListScreen(
                    f"Session {item.session_id}, in order",
                    ("occurred", "session", "agent", "content"),
                    [log_line(x) for x in logs],
                    "No logs.",
                )
            else:
                self.status("nothing more to open for this item", error=True)
                return
        except MosaicClientError as exc:
            self.failed(exc)
            return
        self.app.push_screen(screen)

    def action_jobs(self) -> None:
        self.app.push_screen(JobsScreen())


class MosaicApp(App[None]):
    """The TUI on one client; the client is closed when the app ends."""

    TITLE = "Mosaic Memory"
    CSS = CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help", show=False),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, client: AsyncMosaicClient) -> None:
        super().__init__()
        self.backend = Backend(client)

    def on_mount(self) -> None:
        self.push_screen(MemoryScreen(self.backend))

    async def on_unmount(self) -> None:
        await self.backend.client.aclose()

    @property
    def busy(self) -> bool:
        """A request is pending or in flight (tests wait for this to clear)."""
        pending = any(isinstance(s, MemoryScreen) and s.busy for s in self.screen_stack)
        return pending or any(not w.is_finished for w in self.workers)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())
