"""The TUI's dialogs and secondary screens: help, confirm, edit, a list of logs or changes, jobs."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Markdown, Static, TextArea

from jobs.ledger.schemas import JobOut, JobRunOut
from mosaic_memory.client import MosaicClientError
from mosaic_memory.tui.backend import EditField, parse_fields
from mosaic_memory.tui.views import one_line, run_detail, when

if TYPE_CHECKING:
    from mosaic_memory.tui.app import MosaicApp

__all__ = ["ConfirmScreen", "EditScreen", "HelpScreen", "JobsScreen", "ListScreen"]

POLL_SECONDS = 1.0  # how often the ledger is read again while a run started here is in flight

HELP = """\
# Mosaic Memory: keys

Type to search: results follow as you type. An empty search lists the newest items.

| key | what it does |
| --- | --- |
| `/` | go to the search box |
| `esc` or `↓` | leave the search box (go to the results) · `esc` closes a dialog |
| `↑` `↓` | move in the results; the detail pane follows |
| `1` `2` `3` `4` | insights · preferences · skills · logs (or click a tab; `k` or `f2`: the next one) |
| `o` (`f3`) | next owner: everything you can see, you, each of your teams |
| `m` (`f4`) | next search mode: hybrid, semantic (meaning), keyword (words) |
| `a` | add: a new insight, preference or skill (for the owner shown, else for you) |
| `e` | edit the selected item (insights: content, tags, importance) |
| `d` | delete the selected item (asks first) |
| `s` | insight: the logs it was summarized from · preference: its history · log: its session |
| `r` | reload |
| `j` | jobs: the ledger of runs, run now, dry run, roll back (admin keys) |
| `?` or `f1` | this help |
| `q` or `ctrl+q` | quit |

The mouse works too: click a tab, a row, a button.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog"):
            yield Markdown(HELP)
            yield Button("Close", id="close", variant="primary")

    @on(Button.Pressed, "#close")
    def close(self) -> None:
        self.dismiss()


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no; escape and ``n`` answer no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str = "Delete") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm", classes="dialog"):
            yield Label(self.question, id="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button("Cancel (n)", id="no", variant="default")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # the safe answer has the focus

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class EditScreen(ModalScreen[dict[str, Any] | None]):
    """A form over an item's fields (an edit, or a new item): answers the values to send, parsed
    (only the changed ones for an edit), or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, title: str, fields: list[EditField], *, changed_only: bool = True) -> None:
        super().__init__()
        self.title_text = title
        self.fields = fields
        self.changed_only = changed_only

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="edit", classes="dialog"):
            yield Label(self.title_text, classes="title")
            for f in self.fields:
                yield Label(f.label, classes="field-label")
                if f.multiline:
                    yield TextArea(f.value, id=f"field-{f.name}", classes="field", soft_wrap=True)
                else:
                    yield Input(f.value, id=f"field-{f.name}", classes="field")
            yield Label("", id="edit-error")
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def raw(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in self.fields:
            widget = self.query_one(f"#field-{f.name}")
            out[f.name] = (
                widget.text if isinstance(widget, TextArea) else widget.value if isinstance(widget, Input) else ""
            )
        return out

    def action_save(self) -> None:
        try:
            changes = parse_fields(self.fields, self.raw(), changed_only=self.changed_only)
        except ValueError as exc:
            self.query_one("#edit-error", Label).update(Text(str(exc), style="bold red"))
            return
        self.dismiss(changes)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#save")
    def save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#cancel")
    def cancel_pressed(self) -> None:
        self.action_cancel()


class ListScreen(ModalScreen[None]):
    """A read-only table: an insight's source logs, a preference's history, a session's logs."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]], empty: str) -> None:
        super().__init__()
        self.title_text = title
        self.columns = columns
        self.rows = rows
        self.empty = empty

    def compose(self) -> ComposeResult:
        with Vertical(id="list", classes="dialog"):
            yield Label(self.title_text, classes="title")
            if self.rows:
                table: DataTable[str] = DataTable(id="list-table", cursor_type="row", zebra_stripes=True)
                table.add_columns(*self.columns)
                table.add_rows(self.rows)
                yield table
            else:
                yield Label(self.empty, id="list-empty")
            yield Button("Close (esc)", id="close")

    @on(Button.Pressed, "#close")
    def close(self) -> None:
        self.dismiss()


class JobsScreen(Screen[None]):
    """The jobs and the ledger of their runs: run now, dry run, roll back (admin keys)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("n", "run(False)", "Run now"),
        Binding("y", "run(True)", "Dry run"),
        Binding("b", "rollback", "Roll back"),
        Binding("r", "reload", "Reload"),
        Binding("question_mark,f1", "app.help", "Help", key_display="?"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.job_list: list[JobOut] = []
        self.run_list: list[JobRunOut] = []
        self.running: str | None = None  # the job this screen started and waits for

    @property
    def mosaic(self) -> MosaicApp:
        from mosaic_memory.tui.app import MosaicApp

        assert isinstance(self.app, MosaicApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="jobs-main"):
            with Vertical(id="jobs-left"):
                yield Label("Jobs: n runs the selected job now, y makes a dry run", classes="section")
                jobs: DataTable[str] = DataTable(id="jobs", cursor_type="row")
                jobs.add_columns("job", "schedule", "last run", "status")
                yield jobs
                yield Label("Ledger of runs, newest first: b rolls the selected run back", classes="section")
                runs: DataTable[str] = DataTable(id="runs", cursor_type="row", zebra_stripes=True)
                runs.add_columns("started", "job", "trigger", "status", "progress", "counts")
                yield runs
            with VerticalScroll(id="run-pane"):
                yield Static("Select a run to see what it did.", id="run-detail")
        yield Static("", id="jobs-status")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "Mosaic Memory · jobs"
        self.query_one("#runs", DataTable).focus()
        self.action_reload()

    def status(self, text: str, error: bool = False) -> None:
        self.query_one("#jobs-status", Static).update(Text(text, style="bold red" if error else ""))

    def action_reload(self) -> None:
        self.load()

    @work(exclusive=True, group="jobs", exit_on_error=False)
    async def load(self, select: uuid.UUID | None = None) -> None:
        if not self.running:
            self.status("Loading the ledger…")
        try:
            jobs = await self.mosaic.backend.jobs()
            runs = await self.mosaic.backend.runs()
        except MosaicClientError as exc:
            message = "the jobs view needs an admin key" if exc.status == 403 else f"{exc.error}: {exc.detail}"
            self.status(message, error=True)
            return
        self.job_list, self.run_list = jobs, runs
        jobs_table: DataTable[str] = self.query_one("#jobs", DataTable)
        jobs_table.clear()
        for job in jobs:
            last = job.last_run
            jobs_table.add_row(
                job.id,
                job.schedule or "on demand",
                when(last.started_at) if last else "never",
                last.status if last else "",
                key=job.id,
            )
        runs_table: DataTable[str] = self.query_one("#runs", DataTable)
        runs_table.clear()
        for run in runs:
            counts = ", ".join(f"{k} {v}" for k, v in run.counts.items() if v)
            runs_table.add_row(
                when(run.started_at),
                run.job_id + (" (dry)" if run.dry_run else ""),
                run.trigger,
                run.status,
                f"{run.progress:.0%}",
                one_line(counts, 20),
                key=str(run.id),
            )
        if select is not None:
            index = next((i for i, r in enumerate(runs) if r.id == select), 0)
            runs_table.move_cursor(row=index)
        self.show_run()
        if self.running:
            self.status(f"Running {self.running}… (the ledger refreshes every {POLL_SECONDS:g} s)")
        else:
            self.status(f"{len(jobs)} jobs, {len(runs)} runs in the ledger")

    def selected_run(self) -> JobRunOut | None:
        table: DataTable[str] = self.query_one("#runs", DataTable)
        if not self.run_list or table.cursor_row >= len(self.run_list):
            return None
        return self.run_list[table.cursor_row]

    def selected_job(self) -> JobOut | None:
        table: DataTable[str] = self.query_one("#jobs", DataTable)
        if not self.job_list or table.cursor_row >= len(self.job_list):
            return None
        return self.job_list[table.cursor_row]

    def show_run(self) -> None:
        run = self.selected_run()
        detail = self.query_one("#run-detail", Static)
        detail.update(run_detail(run) if run else "No runs yet: select a job and press n (or y for a dry run).")

    @on(DataTable.RowHighlighted, "#runs")
    def run_highlighted(self) -> None:
        self.show_run()

    def action_run(self, dry_run: bool) -> None:
        job = self.selected_job()
        if job is None:
            self.status("no job selected", error=True)
            return
        self.start_run(job.id, dry_run)

    @work(exclusive=True, group="jobs-write", exit_on_error=False)
    async def start_run(self, job_id: str, dry_run: bool) -> None:
        self.running = f"{job_id}{' (dry run)' if dry_run else ''}"
        self.status(f"Running {self.running}…")
        # the request answers when the run ends; meanwhile the ledger shows its progress
        poll = self.set_interval(POLL_SECONDS, self.poll_ledger)
        try:
            run = await self.mosaic.backend.run_job(job_id, dry_run=dry_run)
        except MosaicClientError as exc:
            self.status(f"{exc.error}: {exc.detail}", error=True)
            return
        finally:
            poll.stop()
            self.running = None
        self.notify(f"{job_id}: {run.status}")
        self.load(select=run.id)

    def poll_ledger(self) -> None:
        self.load()

    def action_rollback(self) -> None:
        run = self.selected_run()
        if run is None:
            self.status("no run selected", error=True)
            return
        if run.dry_run or run.rolled_back_at is not None:
            self.status("a dry run changed nothing, and a rolled-back run has nothing left to undo", error=True)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.do_rollback(run.id)

        question = f"Roll back the {run.job_id} run of {when(run.started_at)}? What it created is removed."
        self.app.push_screen(ConfirmScreen(question, yes="Roll back"), answered)

    @work(exclusive=True, group="jobs-write", exit_on_error=False)
    async def do_rollback(self, run_id: uuid.UUID) -> None:
        self.status("Rolling back…")
        try:
            run = await self.mosaic.backend.rollback(run_id)
        except MosaicClientError as exc:
            self.status(f"{exc.error}: {exc.detail}", error=True)
            return
        self.notify(f"run {run.job_id}: {run.status}")
        self.load(select=run.id)
