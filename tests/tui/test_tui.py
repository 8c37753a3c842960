"""The TUI driven by Textual's headless pilot against the suite's real running service.

Each test starts ``MosaicApp`` on a real :class:`AsyncMosaicClient` pointed at ``cli_url`` (a
uvicorn server on loopback with the real database and model) and checks what the person would
see, and what the service then holds, over REST.
"""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, TextArea

from mosaic_memory.client import AsyncMosaicClient, MosaicClientError
from mosaic_memory.tui.app import MosaicApp
from mosaic_memory.tui.screens import ConfirmScreen, EditScreen, HelpScreen, JobsScreen, ListScreen
from tests.conftest import ADMIN_KEY
from tests.jobs.topics import REPLICA
from tests.tui.conftest import (
    INSIGHTS,
    SIZE,
    HoldingTransport,
    Seeded,
    memory_screen,
    plain,
    screenshot,
    settle,
    shown,
    shown_texts,
    until,
    wait_for,
)


def detail_text(pilot: Pilot[None]) -> str:
    return shown(pilot, "#detail")


async def test_search_as_you_type_detail_and_help(seeded: Seeded) -> None:
    transport = HoldingTransport()
    app = MosaicApp(AsyncMosaicClient(seeded.url, seeded.key, transport=transport))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = memory_screen(pilot)
        # an empty query lists the newest insights of every owner the key reads
        assert set(shown_texts(pilot)) == {*INSIGHTS.values(), "The platform team owns the staging cluster"}
        assert seeded.user in str(app.sub_title)
        screenshot(pilot, "1-insights-newest")

        query = "what colour scheme does she like"
        await pilot.press(*query)
        await settle(pilot)
        # typing sends far fewer searches than keystrokes, and the last one is the whole query
        assert 1 <= len(transport.searches) < len(query) and transport.searches[-1] == query
        texts = shown_texts(pilot)
        assert texts[0] == INSIGHTS["theme"]
        table = screen.query_one("#results", DataTable)
        assert table.columns and next(iter(table.columns.values())).label.plain == "score"
        # the detail pane shows the whole first hit, fetched from the service
        assert INSIGHTS["theme"] in detail_text(pilot) and "importance" in detail_text(pilot)
        screenshot(pilot, "2-search-detail")

        # esc leaves the search box; the cursor moves the detail pane along
        await pilot.press("escape")
        # keyword mode matches words: none of these is in any of her insights
        await pilot.press("m")  # semantic: by meaning alone, the theme still first
        await settle(pilot)
        assert "semantic" in shown(pilot, "#owner") and shown_texts(pilot)[0] == INSIGHTS["theme"]
        await pilot.press("m")
        await settle(pilot)
        assert "keyword" in shown(pilot, "#owner") and shown_texts(pilot) == []
        await pilot.press("m")  # back to hybrid
        await settle(pilot)
        assert shown_texts(pilot) == texts
        assert isinstance(app.focused, DataTable)
        await pilot.press("down")
        await settle(pilot)
        assert texts[1] in detail_text(pilot)

        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        screenshot(pilot, "3-help")
        await pilot.press("escape")
        assert memory_screen(pilot) is screen
        # the footer names the keys
        footer = " ".join(b.binding.description for b in screen.active_bindings.values() if b.binding.show)
        assert {"Help", "Edit", "Delete", "Jobs"} <= set(footer.split())


async def test_a_stale_answer_never_replaces_a_newer_one(seeded: Seeded) -> None:
    transport = HoldingTransport(hold=lambda r: r.url.path == "/v1/search" and b'"deploys"' in r.content)
    app = MosaicApp(AsyncMosaicClient(seeded.url, seeded.key, transport=transport))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press(*"deploys")
        screen = memory_screen(pilot)
        screen.reload()  # as the debounce would: the "deploys" search is now in flight, held back
        await until(pilot, transport.holding.is_set)
        # the person keeps typing before the slow answer comes
        input_box = screen.query_one("#query", Input)
        input_box.value = "black coffee"
        await settle(pilot)
        transport.release.set()  # the late answer arrives now (or its request was cancelled)
        await settle(pilot)
        assert shown_texts(pilot)[0] == INSIGHTS["coffee"]
        assert "black coffee" in plain(screen.query_one("#status"))


async def search_for(pilot: Pilot[None], query: str) -> list[str]:
    """Type ``query``, press enter (to the results) and wait for the answer; the texts shown."""
    await settle(pilot)
    await pilot.press(*query, "enter")
    await settle(pilot)
    return shown_texts(pilot)


async def edit_text(pilot: Pilot[None], field: str, text: str) -> None:
    """``e`` on the selected item, ``text`` into its multi-line ``field``, ``ctrl+s``."""
    await pilot.press("e")
    await pilot.pause()
    dialog = pilot.app.screen
    assert isinstance(dialog, EditScreen)
    dialog.query_one(f"#field-{field}", TextArea).text = text
    await pilot.press("ctrl+s")


async def test_edit_with_a_bad_value_then_a_good_one(seeded: Seeded) -> None:
    app = MosaicApp(AsyncMosaicClient(seeded.url, seeded.key))
    async with app.run_test(size=SIZE) as pilot:
        assert (await search_for(pilot, "deploys on tuesdays"))[0] == INSIGHTS["deploy"]
        await pilot.press("e")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, EditScreen)
        dialog.query_one("#field-content", TextArea).text = "Deploys to production happen on Wednesdays"
        dialog.query_one("#field-tags", Input).value = "ops, release"
        dialog.query_one("#field-importance", Input).value = "2"
        screenshot(pilot, "4-edit")
        await pilot.press("ctrl+s")
        await pilot.pause()
        # out of range: the dialog stays, says why, and nothing was sent
        assert app.screen is dialog
        assert "from 0 to 1" in plain(dialog.query_one("#edit-error"))
        dialog.query_one("#field-importance", Input).value = "0.9"
        await pilot.click("#save")
        await wait_for(pilot, lambda: "Wednesdays" in detail_text(pilot))
        assert not isinstance(app.screen, EditScreen)
        assert "Wednesdays" in detail_text(pilot)
    async with AsyncMosaicClient(seeded.url, seeded.key) as mm:
        stored = await mm.get_insight(seeded.insights["deploy"])
    assert stored.content == "Deploys to production happen on Wednesdays"
    assert stored.tags == ["ops", "release"] and stored.importance == 0.9


async def test_delete_asks_first(seeded: Seeded) -> None:
    app = MosaicApp(AsyncMosaicClient(seeded.url, seeded.key))
    async with app.run_test(size=SIZE) as pilot:
        assert (await search_for(pilot, "coffee"))[0] == INSIGHTS["coffee"]
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        screenshot(pilot, "5-delete-confirm")
        await pilot.press("n")  # no: nothing happens
        await settle(pilot)
        async with AsyncMosaicClient(seeded.url, seeded.key) as mm:
            assert (await mm.get_insight(seeded.insights["coffee"])).content == INSIGHTS["coffee"]
        await pilot.press("d")
        await pilot.pause()
        await pilot.click("#yes")
        await wait_for(pilot, lambda: INSIGHTS["coffee"] not in shown_texts(pilot))
        assert INSIGHTS["coffee"] not in shown_texts(pilot)
    async with AsyncMosaicClient(seeded.url, seeded.key) as mm:
        try:
            await mm.get_insight(seeded.insights["coffee"])
        except MosaicClientError as exc:
            assert exc.status == 404
        else:
            raise AssertionError("the insight is still there")
        assert (await mm.get_insight(seeded.insights["theme"])).content == INSIGHTS["theme"]


async def test_kinds_owners_history_and_session(seeded: Seeded) -> None:
    app = MosaicApp(AsyncMosaicClient(seeded.url, seeded.key))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("escape", "2")
        await settle(pilot)
        assert memory_screen(pilot).kind == "preferences"
        assert shown_texts(pilot) == ["editor_theme: solarized dark"]
        assert "mutable" in detail_text(pilot)
        await edit_text(pilot, "value", '{"name": "nord", "contrast": 7}')
        await wait_for(pilot, lambda: "nord" in " ".join(shown_texts(pilot)))
        async with AsyncMosaicClient(seeded.url, seeded.key) as mm:
            assert (await mm.get_preference("editor_theme")).value == {"name": "nord", "contrast": 7}
            await mm.set_preference("editor_font", "Iosevka")
        await pilot.press("r")
        await settle(pilot)
        assert shown_texts(pilot)[1].startswith("editor_theme")  # by key, and still selected
        selected = memory_screen(pilot).selected_row()
        assert selected is not None and selected.text.startswith("editor_theme")
        await pilot.press("s")
        await settle(pilot)
        history = app.screen
        assert isinstance(history, ListScreen)
        table = history.query_one("#list-table", DataTable)
        actions = sorted(str(table.get_row_at(i)[1]) for i in range(table.row_count))
        assert actions == ["create", "update", "update"]
        screenshot(pilot, "6-preference-history")
        await pilot.press("escape")
        await pilot.press("d", "y")  # editor_theme, still selected; yes by key
        await wait_for(pilot, lambda: len(shown_texts(pilot)) == 1)
        assert shown_texts(pilot) == ["editor_font: Iosevka"]

        await pilot.press("3")
        await settle(pilot)
        assert shown_texts(pilot) == ["deploy-staging: Deploy the current branch to staging"]
        assert "make deploy" in detail_text(pilot)
        await edit_text(pilot, "instructions", "make deploy ENV=staging")
        await wait_for(pilot, lambda: "ENV=staging" in detail_text(pilot))
        async with AsyncMosaicClient(seeded.url, seeded.key) as mm:
            assert (await mm.get_skill(seeded.skill)).instructions == "make deploy ENV=staging"
            await mm.create_skill("rollback-staging", "Roll staging back to the last release")
        await pilot.press("r")
        await settle(pilot)
        assert len(shown_texts(pilot)) == 2
        # a reload keeps the selection: deploy-staging, now below the newer skill
        selected = memory_screen(pilot).selected_row()
        assert selected is not None and selected.id == seeded.skill
        await pilot.press("up", "d", "y")  # the newest: rollback-staging
        await wait_for(pilot, lambda: len(shown_texts(pilot)) == 1)
        assert shown_texts(pilot) == ["deploy-staging: Deploy the current branch to staging"]

        await pilot.click("#kinds #logs")  # the mouse works too
        await settle(pilot)
        assert len(shown_texts(pilot)) == 6 and "[tui-font coder]" in shown_texts(pilot)[0]
        await pilot.press("s")
        await settle(pilot)
        session = app.screen
        assert isinstance(session, ListScreen)
        table = session.query_one("#list-table", DataTable)
        assert table.row_count == 6 and str(table.get_row_at(0)[3]).startswith("User wants a new font")
        await pilot.press("escape")
        # logs are append-only: no edit dialog
        await pilot.press("e")
        await pilot.pause()
        assert not isinstance(app.screen, EditScreen)
        assert "append-only" in shown(pilot, "#status")

        # owners: all, then the user alone, then the team alone
        await pilot.press("1")
        await settle(pilot)
        team_text = "The platform team owns the staging cluster"
        assert team_text in shown_texts(pilot)
        await pilot.press("o")
        await settle(pilot)
        assert team_text not in shown_texts(pilot) and INSIGHTS["theme"] in shown_texts(pilot)
        await pilot.press("o")
        await settle(pilot)
        assert shown_texts(pilot) == [team_text]
        assert f"team:{seeded.team}" in shown(pilot, "#owner")

        # add: a new insight goes to the owner shown (the team); a blank one is refused in place
        await pilot.press("a")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, EditScreen) and f"team:{seeded.team}" in plain(form.query_one(".title"))
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is form and "content must not be blank" in plain(form.query_one("#edit-error"))
        form.query_one("#field-content", TextArea).text = "The team's on-call rotation changes on Mondays"
        form.query_one("#field-tags", Input).value = "ops, oncall"
        await pilot.press("ctrl+s")
        added = "The team's on-call rotation changes on Mondays"
        await wait_for(pilot, lambda: added in shown_texts(pilot))
        selected = memory_screen(pilot).selected_row()
        assert selected is not None and selected.text == added  # the cursor is on the new one
        async with AsyncMosaicClient(seeded.url, seeded.key) as mm:
            stored = await mm.get_insight(selected.id)
        assert stored.owner == f"team:{seeded.team}" and stored.tags == ["oncall", "ops"]  # kept sorted
        assert stored.importance == 0.5


async def open_form(pilot: Pilot[None], *keys: str) -> EditScreen:
    """Press ``keys`` and return the add or edit form they open."""
    await pilot.press(*keys)
    await pilot.pause()
    form = pilot.app.screen
    assert isinstance(form, EditScreen)
    return form


async def test_add_a_preference_and_a_skill(seeded: Seeded) -> None:
    app = MosaicApp(AsyncMosaicClient(seeded.url, seeded.key))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        form = await open_form(pilot, "escape", "2", "a")
        form.query_one("#field-key", Input).value = "review_style"
        form.query_one("#field-value", TextArea).text = '{"tone": "terse"}'
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any(t.startswith("review_style") for t in shown_texts(pilot)))

        form = await open_form(pilot, "3", "a")
        form.query_one("#field-name", Input).value = "rotate-keys"
        form.query_one("#field-description", Input).value = "Rotate a service's API keys"
        form.query_one("#field-instructions", TextArea).text = "keys create, deploy, keys revoke"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "rotate-keys: Rotate a service's API keys" in shown_texts(pilot))
    async with AsyncMosaicClient(seeded.url, seeded.key) as mm:
        assert (await mm.get_preference("review_style")).value == {"tone": "terse"}
        skills = {s.name: s.instructions for s in (await mm.list_skills()).items}
        assert skills["rotate-keys"] == "keys create, deploy, keys revoke"


async def test_sources_and_the_jobs_ledger_with_rollback(cli_url: str, seeded: Seeded) -> None:
    """An admin runs a dry run and a summarization from the jobs view, opens a summarized
    insight's sources in the user's TUI, then rolls the run back."""
    async with AsyncMosaicClient(cli_url, seeded.key) as mm:
        await mm.log_events([{"session_id": "tui-replica", "content": t, "agent_id": "coder"} for t in REPLICA])

    # a user key: the jobs view says it needs an admin key
    app = MosaicApp(AsyncMosaicClient(cli_url, seeded.key))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("escape", "j")
        await settle(pilot)
        assert isinstance(app.screen, JobsScreen)
        assert "admin key" in shown(pilot, "#jobs-status")

    # the answer to the real run (not the dry one) is held back, as for a long run
    transport = HoldingTransport(hold=lambda r: r.url.path.endswith("/summarize/runs") and b"false" in r.content)
    admin = MosaicApp(AsyncMosaicClient(cli_url, ADMIN_KEY, transport=transport))
    async with admin.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("escape", "j")
        await settle(pilot)
        jobs = admin.screen
        assert isinstance(jobs, JobsScreen)
        index = [j.id for j in jobs.job_list].index("summarize")
        await pilot.press("shift+tab", *["down"] * index)
        assert jobs.selected_job() is not None and jobs.selected_job().id == "summarize"  # type: ignore[union-attr]

        await pilot.press("y")  # dry run: the ledger shows what it would write, nothing written
        await settle(pilot)
        dry = jobs.selected_run()
        assert dry is not None and dry.dry_run and dry.status == "succeeded"
        assert "Would write" in plain(jobs.query_one("#run-detail"))
        async with AsyncMosaicClient(cli_url, seeded.key) as mm:
            assert not [i for i in (await mm.list_insights(limit=200)).items if "summary" in i.tags]

        runs_before = len(jobs.run_list)
        await pilot.press("n")  # the real run
        await until(pilot, transport.holding.is_set)
        # while the run's answer is outstanding the screen reads the ledger again: the run shows
        await until(pilot, lambda: len(jobs.run_list) > runs_before)
        assert len(jobs.run_list) == runs_before + 1 and "Running summarize" in shown(pilot, "#jobs-status")
        transport.release.set()
        await settle(pilot)
        real = jobs.selected_run()
        assert real is not None and not real.dry_run and real.status == "succeeded"
        assert real.counts["insights_created"] >= 1
        screenshot(pilot, "7-jobs-ledger")

        # the user sees the summarized insight and the logs it came from
        async with AsyncMosaicClient(cli_url, seeded.key) as mm:
            summarized = [i for i in (await mm.list_insights(limit=200)).items if "summary" in i.tags]
        assert summarized
        user_app = MosaicApp(AsyncMosaicClient(cli_url, seeded.key))
        async with user_app.run_test(size=SIZE) as user_pilot:
            await search_for(user_pilot, "streaming replica standby")
            screen = memory_screen(user_pilot)
            row = next(i for i, r in enumerate(screen.rows) if r.id in {str(s.id) for s in summarized})
            screen.query_one("#results", DataTable).move_cursor(row=row)
            await settle(user_pilot)
            await user_pilot.press("s")
            await settle(user_pilot)
            sources = user_app.screen
            assert isinstance(sources, ListScreen)
            table = sources.query_one("#list-table", DataTable)
            contents = [str(table.get_row_at(i)[3]) for i in range(table.row_count)]
            assert contents and all(c.rstrip("…")[:40] in " ".join(REPLICA) for c in contents)
            assert {str(table.get_row_at(i)[1]) for i in range(table.row_count)} == {"tui-replica"}
            screenshot(user_pilot, "8-insight-sources")

        # roll the run back: asked first, then the run's insights are gone
        await pilot.press("b")
        await pilot.pause()
        assert isinstance(admin.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: getattr(jobs.selected_run(), "status", "") == "rolled_back")
        undone = jobs.selected_run()
        assert undone is not None and undone.id == real.id and undone.status == "rolled_back"
        assert "Rollback" in plain(jobs.query_one("#run-detail"))
        screenshot(pilot, "9-jobs-rolled-back")
    async with AsyncMosaicClient(cli_url, seeded.key) as mm:
        left = {str(i.id) for i in (await mm.list_insights(limit=200)).items}
    assert not left & {str(s.id) for s in summarized}


async def test_an_unreachable_service_is_one_clear_line() -> None:
    from tests.conftest import free_port

    port = free_port()
    app = MosaicApp(AsyncMosaicClient(f"http://alice:hunter2@127.0.0.1:{port}/?token=zz9", "mm_nothing"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        status = shown(pilot, "#status")
        assert f"cannot reach Mosaic Memory at http://127.0.0.1:{port}/" in status
        screen = app.export_screenshot()
        for secret in ("mm_nothing", "hunter2", "alice", "zz9"):
            assert secret not in status and secret not in screen and secret not in str(app.sub_title)
