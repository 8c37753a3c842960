"""The web UI end to end: real Chromium, a real service process, the real model and database.

Each test signs in as users of its own, so tests never see each other's rows; what the UI did is
checked through the REST API with the same person's key.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from mosaic_memory.container import AppState
from mosaic_memory.models import AgentLog
from tests.conftest import ADMIN_KEY, auth
from tests.jobs.conftest import owner_id

pytest.importorskip("playwright", reason="web UI browser tests skipped: the playwright package is not installed")
from playwright.async_api import Browser, BrowserContext, expect

from tests.web.conftest import PersonFactory, sign_in, unlabelled_fields


async def add_insight(api: httpx.AsyncClient, headers: dict[str, str], content: str, **extra: object) -> str:
    r = await api.post("/v1/insights", json={"content": content, **extra}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_a_visit_without_a_session_is_sent_to_sign_in_and_back(
    context: BrowserContext, make_person: PersonFactory, shots: Path
) -> None:
    alice = await make_person()
    page = await context.new_page()
    await page.goto("/ui/preferences?owner=")
    assert "/ui/signin?next=" in page.url
    await page.screenshot(path=shots / "signin.png")
    await page.get_by_label("API key").fill("mm_not_a_real_key_0000000000")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("not valid")
    assert "mm_not_a_real_key" not in await page.content()  # a typed key is never echoed
    await page.get_by_label("API key").fill(alice.key)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/ui/preferences*")
    await expect(page.get_by_role("heading", name="Preferences")).to_be_visible()
    assert alice.key not in await page.content()
    cookies = {c["name"]: c for c in await context.cookies()}
    assert cookies["mosaic_session"]["httpOnly"] and cookies["mosaic_session"]["sameSite"] == "Lax"
    assert alice.key not in cookies["mosaic_session"]["value"]

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/ui/signin*")
    await page.goto("/ui/search")
    assert "/ui/signin" in page.url


async def test_search_as_you_type_edit_and_delete_an_insight(
    context: BrowserContext, make_person: PersonFactory, api: httpx.AsyncClient, shots: Path
) -> None:
    alice = await make_person()
    target = await add_insight(
        api, alice.headers, "Alice keeps her tea collection in the blue cupboard", tags=["home"], importance=0.4
    )
    await add_insight(api, alice.headers, "The deploy pipeline needs a manual approval on Fridays", tags=["work"])
    page = await context.new_page()
    await sign_in(page, alice.key)

    # typing alone searches (debounced), no submit
    await page.get_by_label("Search for").press_sequentially("where is the tea", delay=30)
    hit = page.locator("#results .hit").first
    await expect(hit).to_contain_text("blue cupboard")
    await expect(hit).to_contain_text("insights")
    await expect(hit).to_contain_text(f"user:{alice.name}")
    # the URL follows, so the search is shareable
    assert parse_qs(urlsplit(page.url).query)["q"] == ["where is the tea"]
    unrelated = page.locator("#results .hit").filter(has_text="deploy pipeline")
    await expect(unrelated).to_contain_text("weak match")
    await expect(page.locator("#results")).to_contain_text("1 relevant insight or skill")  # what a bulk delete takes
    await page.screenshot(path=shots / "search.png", full_page=True)
    assert await unlabelled_fields(page) == []

    await hit.get_by_role("link").click()
    await page.wait_for_url(f"**/ui/insights/{target}")
    await page.screenshot(path=shots / "insight.png", full_page=True)
    await page.get_by_label("Content", exact=True).fill("Alice keeps her tea collection in the green cupboard")
    await page.get_by_label("Tags (comma-separated)").fill("home, kitchen")
    await page.get_by_label("Importance (0 to 1)").fill("0.9")
    await page.get_by_label("Pinned (never decays or expires)").check()
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_role("status")).to_contain_text("Saved")
    stored = (await api.get(f"/v1/insights/{target}", headers=alice.headers)).json()
    assert stored["content"] == "Alice keeps her tea collection in the green cupboard"
    assert stored["tags"] == ["home", "kitchen"] and stored["importance"] == 0.9 and stored["pinned"] is True

    # bad input is refused with the reason, nothing stored
    await page.get_by_label("Importance (0 to 1)").evaluate("e => e.removeAttribute('max')")
    await page.get_by_label("Importance (0 to 1)").fill("7")
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_role("alert")).to_contain_text("importance")
    assert (await api.get(f"/v1/insights/{target}", headers=alice.headers)).json()["importance"] == 0.9

    await page.get_by_role("link", name="Delete…").click()
    await expect(page.get_by_role("heading", name="Delete this insight?")).to_be_visible()
    await page.screenshot(path=shots / "confirm-delete.png", full_page=True)
    assert (await api.get(f"/v1/insights/{target}", headers=alice.headers)).status_code == 200  # not yet
    await page.get_by_role("button", name="Delete insight").click()
    await expect(page.get_by_role("status")).to_contain_text("Deleted 1 row")
    assert (await api.get(f"/v1/insights/{target}", headers=alice.headers)).status_code == 404


async def test_supersede_keeps_history_and_bulk_delete_shows_the_count_first(
    context: BrowserContext, make_person: PersonFactory, api: httpx.AsyncClient, shots: Path
) -> None:
    bob = await make_person()
    old = await add_insight(api, bob.headers, "Bob's standup is at 9:30 every weekday")
    page = await context.new_page()
    await sign_in(page, bob.key, then=f"/ui/insights/{old}")
    await page.get_by_label("The corrected fact").fill("Bob's standup moved to 10:00 every weekday")
    await page.get_by_role("button", name="Supersede").click()
    await expect(page.get_by_role("status")).to_contain_text("old one is kept")
    await expect(page.get_by_role("region", name="History")).to_contain_text("9:30")
    new_id = page.url.rsplit("/", 1)[-1].split("?")[0]
    assert (await api.get(f"/v1/insights/{old}", headers=bob.headers)).json()["superseded_by"] == new_id

    for fact in (
        "The zebrafish tank gets cleaned every Monday morning",
        "Zebrafish food is the green tin on the top shelf",
        "Bob keeps the zebrafish breeding notes in the lab notebook",
    ):
        await add_insight(api, bob.headers, fact)
    await page.goto("/ui/search?q=zebrafish&kinds=insights&mode=keyword")
    await expect(page.locator("#hit-count")).to_contain_text("3 results")
    await page.get_by_role("link", name="Delete these results…").click()
    await expect(page.get_by_role("heading", name="Delete 3 results?")).to_be_visible()
    await page.screenshot(path=shots / "bulk-delete.png", full_page=True)
    await page.get_by_role("button", name="Delete 3 results").click()
    await expect(page.get_by_role("status")).to_contain_text("Deleted 3 rows")
    left = await api.post("/v1/search", json={"query": "zebrafish", "mode": "keyword"}, headers=bob.headers)
    assert left.json()["hits"] == []
    assert (await api.get(f"/v1/insights/{new_id}", headers=bob.headers)).status_code == 200


async def test_a_form_post_without_the_csrf_token_is_refused(
    context: BrowserContext, make_person: PersonFactory, api: httpx.AsyncClient
) -> None:
    carol = await make_person()
    target = await add_insight(api, carol.headers, "Carol's bike lock code is not stored here")
    page = await context.new_page()
    await sign_in(page, carol.key)
    # the browser's own session cookie, but no token: what a forged cross-site form would send
    refused = await page.request.post(f"/ui/insights/{target}/delete", form={})
    assert refused.status == 403
    forged = await page.request.post(f"/ui/insights/{target}/delete", form={"csrf_token": "guessed"})
    assert forged.status == 403
    assert (await api.get(f"/v1/insights/{target}", headers=carol.headers)).status_code == 200


async def test_a_person_never_sees_another_persons_rows(
    context: BrowserContext, make_person: PersonFactory, api: httpx.AsyncClient
) -> None:
    dave, erin = await make_person(), await make_person()
    secret = await add_insight(api, dave.headers, "Dave's allergy: he reacts badly to cashew nuts")
    await api.put("/v1/preferences/diet", json={"value": "no cashews"}, headers=dave.headers)
    page = await context.new_page()
    await sign_in(page, erin.key)
    await page.goto("/ui/search?q=cashew+nuts+allergy")
    await expect(page.locator("#hit-count")).to_contain_text("0 results")
    await page.goto("/ui/insights")
    await expect(page.locator("main")).not_to_contain_text("cashew")
    await page.goto("/ui/preferences")
    await expect(page.locator("main")).not_to_contain_text("no cashews")
    response = await page.goto(f"/ui/insights/{secret}")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    # nor can her own forms (with a valid CSRF token) change or delete his row
    await page.goto("/ui/search")
    token = await page.locator("input[name=csrf_token]").first.input_value()
    for action, form in (("", {"content": "pwned", "importance": "0.5"}), ("/delete", {})):
        r = await page.request.post(f"/ui/insights/{secret}{action}", form={"csrf_token": token, **form})
        assert r.status == 404
    after = (await api.get(f"/v1/insights/{secret}", headers=dave.headers)).json()
    assert after["content"] == "Dave's allergy: he reacts badly to cashew nuts"
    script_sees = await page.evaluate("() => document.cookie")  # HTTP-only cookies stay invisible to script
    assert "mosaic_session" not in script_sees and "mosaic_csrf" not in script_sees


async def test_preferences_logs_and_skills_pages(
    context: BrowserContext, make_person: PersonFactory, api: httpx.AsyncClient, shots: Path
) -> None:
    fay = await make_person()
    h = fay.headers
    assert (await api.put("/v1/preferences/editor", json={"value": "vim"}, headers=h)).status_code in (200, 201)
    r = await api.put("/v1/preferences/review-style", json={"value": "terse", "mutable": False}, headers=h)
    assert r.status_code in (200, 201), r.text
    events = [{"session_id": "s-42", "content": f"step {n} of the migration"} for n in range(3)]
    assert (await api.post("/v1/logs", json={"events": events}, headers=h)).status_code == 201
    r = await api.post("/v1/skills", json={"name": "release", "description": "Cut a release of the service"}, headers=h)
    skill = r.json()["id"]
    page = await context.new_page()
    await sign_in(page, fay.key, then="/ui/preferences")
    row = page.get_by_role("row").filter(has_text="review-style")
    await expect(row).to_contain_text("immutable")
    await page.screenshot(path=shots / "preferences.png", full_page=True)
    await page.get_by_role("link", name="editor").click()
    await page.get_by_label("Value (JSON, or plain text)").fill('"emacs"')
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_contain_text("Saved")
    history = page.get_by_role("table")
    await expect(history).to_contain_text('"vim"')
    await expect(history).to_contain_text('"emacs"')
    assert (await api.get("/v1/preferences/editor", headers=h)).json()["value"] == "emacs"

    await page.goto("/ui/logs")
    listed = page.get_by_role("row").filter(has_text="s-42")
    await expect(listed.locator("td").nth(1)).to_have_text("3")  # the session's event count
    await page.screenshot(path=shots / "log-sessions.png", full_page=True)
    await listed.get_by_role("link", name="s-42").click()
    await expect(page.get_by_role("heading")).to_contain_text("s-42")
    cells = page.locator("tbody tr td:nth-child(5)")
    await expect(cells).to_have_text(["step 0 of the migration", "step 1 of the migration", "step 2 of the migration"])
    await page.screenshot(path=shots / "logs.png", full_page=True)
    # a log found by search opens in its session
    await page.goto("/ui/search?q=step+1+of+the+migration&kinds=logs&mode=keyword")
    await page.locator("#results .hit").first.get_by_role("link").click()
    await page.wait_for_url(re.compile(r"/ui/logs\?session_id=s-42.*#log-"))
    await expect(page.locator("tr:target")).to_contain_text("step 1 of the migration")

    await page.goto(f"/ui/skills/{skill}")
    await page.get_by_label("Instructions").fill("Tag, build, publish.")
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_role("status")).to_contain_text("Saved")
    assert (await api.get(f"/v1/skills/{skill}", headers=h)).json()["instructions"] == "Tag, build, publish."
    await page.screenshot(path=shots / "skill.png", full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto("/ui/search?q=release")
    await page.screenshot(path=shots / "search-phone.png", full_page=True)
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390  # nothing forces sideways scrolling at phone width


async def test_jobs_dry_run_run_with_progress_sources_and_rollback(
    state: AppState,
    browser: Browser,
    ui_url: str,
    context: BrowserContext,
    make_person: PersonFactory,
    api: httpx.AsyncClient,
    shots: Path,
) -> None:
    gus = await make_person()
    session_id = f"trip-{uuid.uuid4().hex[:6]}"
    events = [
        {"session_id": session_id, "content": "Gus decided the team offsite will be in Lisbon in May"},
        {"session_id": session_id, "content": "Gus prefers window seats on every flight he books"},
    ]
    assert (await api.post("/v1/logs", json={"events": events}, headers=gus.headers)).status_code == 201
    admin = await context.new_page()
    await sign_in(admin, ADMIN_KEY, then="/ui/jobs")
    summarize = admin.get_by_role("row").filter(has_text="summarize")
    await summarize.get_by_label("Dry run").check()
    await summarize.get_by_role("button", name="Run summarize now").click()
    await expect(admin.get_by_role("status")).to_contain_text(re.compile("run (finished|started)"))
    latest = admin.locator("#runs tbody tr").first
    await expect(latest).to_contain_text("dry run")
    await expect(latest).to_contain_text("succeeded", timeout=60_000)
    await latest.get_by_role("link").click()
    await expect(admin.get_by_role("heading", name="What it would change")).to_be_visible()
    assert (await api.get("/v1/insights", headers=gus.headers)).json()["items"] == []  # a dry run writes nothing

    await admin.goto("/ui/jobs")
    # Gus's logs held as a writer would hold them: the real run waits on them, in progress
    async with state.sessionmaker() as held, held.begin():
        owner = await owner_id(state, gus.name)
        await held.execute(select(AgentLog.id).where(AgentLog.owner_id == owner).with_for_update())
        await summarize.get_by_role("button", name="Run summarize now").click()
        await expect(admin.get_by_role("status")).to_contain_text("progress shows below")
        latest = admin.locator("#runs tbody tr").first
        await expect(latest).not_to_contain_text("dry run")
        await expect(latest.get_by_role("progressbar")).to_be_visible()
        assert await admin.locator("#runs").get_attribute("hx-trigger") == "every 1s"
        await admin.screenshot(path=shots / "jobs-running.png", full_page=True)
    # released: the page polls its way to the outcome, no reload
    await expect(latest).to_contain_text("succeeded", timeout=60_000)
    await expect(admin.locator("#runs")).not_to_have_attribute("hx-trigger", "every 1s")
    await admin.screenshot(path=shots / "jobs.png", full_page=True)
    await latest.get_by_role("link").click()
    run_url = admin.url
    await admin.screenshot(path=shots / "job-run.png", full_page=True)

    # Gus finds the new insight and the logs it came from
    made = (await api.get("/v1/insights", headers=gus.headers)).json()["items"]
    lisbon = [i for i in made if "Lisbon" in i["content"]]
    assert lisbon, f"the run summarized Gus's logs into insights: {made}"
    person = await browser.new_context(base_url=ui_url)
    gus_page = await person.new_page()
    await sign_in(gus_page, gus.key, then=f"/ui/insights/{lisbon[0]['id']}")
    sources = gus_page.get_by_role("region", name="Source logs")
    await expect(sources).to_contain_text("Lisbon")
    await expect(sources).to_contain_text(session_id)
    await gus_page.screenshot(path=shots / "insight-sources.png", full_page=True)

    await admin.goto(run_url)
    await admin.get_by_label("I want to undo this run").check()
    await admin.get_by_role("button", name="Roll back").click()
    await expect(admin.get_by_role("status")).to_contain_text("rolled back")
    assert (await api.get("/v1/insights", headers=gus.headers)).json()["items"] == []
    await gus_page.reload()
    await expect(gus_page.get_by_role("heading", name="Not found")).to_be_visible()
    await person.close()


async def test_admin_creates_a_user_shows_the_key_once_and_revokes_it(
    context: BrowserContext, make_person: PersonFactory, api: httpx.AsyncClient, shots: Path
) -> None:
    plain = await make_person()
    page = await context.new_page()
    await sign_in(page, plain.key)
    await expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    response = await page.goto("/ui/admin")
    assert response is not None and response.status == 403
    await page.get_by_role("button", name="Sign out").click()

    await sign_in(page, ADMIN_KEY, then="/ui/admin")
    name = f"newbie-{uuid.uuid4().hex[:6]}"
    await page.get_by_label("New user's name").fill(name)
    await page.get_by_role("button", name="Create user and first key").click()
    key = (await page.locator("#new-key").inner_text()).strip()
    assert key.startswith("mm_")
    await page.screenshot(path=shots / "new-key.png", mask=[page.locator("#new-key")])  # no key in artefacts
    assert (await api.get("/v1/me", headers=auth(key))).status_code == 200
    await page.goto("/ui/admin")
    assert key not in await page.content()  # shown once: the list shows only its prefix
    await page.screenshot(path=shots / "admin.png", full_page=True)
    assert await unlabelled_fields(page) == []
    row = page.get_by_role("row").filter(has_text=name)
    await row.get_by_role("link", name="Revoke").click()
    await expect(page.get_by_role("heading")).to_contain_text(f"of {name}?")
    assert (await api.get("/v1/me", headers=auth(key))).status_code == 200  # not before confirming
    await page.get_by_role("button", name="Revoke key").click()
    await expect(page.get_by_role("status")).to_contain_text("Revoked")
    assert (await api.get("/v1/me", headers=auth(key))).status_code == 401


async def test_search_filters_kinds_tags_dates_and_a_teams_memory(
    context: BrowserContext, make_person: PersonFactory, api: httpx.AsyncClient, shots: Path
) -> None:
    hana = await make_person()
    team = f"team-{uuid.uuid4().hex[:6]}"
    r = await api.post("/v1/admin/teams", json={"name": team, "members": [hana.name]}, headers=auth(ADMIN_KEY))
    assert r.status_code == 201, r.text
    await add_insight(api, hana.headers, "Hana waters the office ferns on Mondays", tags=["plants"])
    await add_insight(api, hana.headers, "Hana's fern fertilizer is in the garage", tags=["garage"])
    await add_insight(api, hana.headers, "The team ferns need misting twice a week", owner=f"team:{team}")
    page = await context.new_page()
    await sign_in(page, hana.key)
    hits = page.locator("#results .hit")

    await page.goto("/ui/search?q=ferns&mode=keyword&kinds=insights")
    await expect(hits).to_have_count(3)
    await page.get_by_label("Tags (any of, comma-separated)").fill("plants")
    await page.get_by_role("button", name="Search").click()
    await expect(hits).to_have_count(1)
    await expect(hits).to_contain_text("office ferns")

    await page.get_by_label("Tags (any of, comma-separated)").fill("")
    await page.get_by_label("Owner").select_option(f"team:{team}")  # a change searches at once
    await expect(hits).to_have_count(1)
    await expect(hits).to_contain_text(f"team:{team}")

    await page.goto("/ui/insights")
    await expect(page.get_by_role("row")).to_have_count(1 + 3)  # her own and her team's
    await page.screenshot(path=shots / "insights.png", full_page=True)
    await page.goto("/ui/search?q=ferns&mode=keyword&kinds=insights&before=2000-01-01")
    await expect(page.locator("#hit-count")).to_contain_text("0 results")
    await page.goto("/ui/search?q=ferns&mode=keyword&kinds=skills")
    await expect(page.locator("#hit-count")).to_contain_text("0 results")
    # a federated search with no peers granting her anything finds her own rows, labelled local
    await page.goto("/ui/search?q=ferns&mode=keyword&kinds=insights")
    await page.get_by_label("Also search federation peers that granted me access").check()
    await expect(page).to_have_url(re.compile("federated=on"))
    await expect(hits).to_have_count(3)
    await expect(hits.first).to_contain_text("origin local")
    await page.goto("/ui/search?q=ferns&after=someday")
    await expect(page.get_by_role("alert")).to_contain_text("dates look like")


async def test_every_main_page_fits_a_phone_and_labels_its_fields(browser: Browser, ui_url: str, shots: Path) -> None:
    phone = await browser.new_context(base_url=ui_url, viewport={"width": 390, "height": 844}, is_mobile=True)
    page = await phone.new_page()
    await sign_in(page, ADMIN_KEY)
    for path in (
        "/ui/search?q=ferns",
        "/ui/insights",
        "/ui/preferences",
        "/ui/logs",
        "/ui/skills",
        "/ui/jobs",
        "/ui/admin",
    ):
        await page.goto(path)
        name = path.split("/")[2].split("?")[0]
        await page.screenshot(path=shots / f"phone-{name}.png", full_page=True)
        assert await page.evaluate("() => document.documentElement.scrollWidth") <= 390, path
        assert await unlabelled_fields(page) == [], path
        if name == "search":  # the query box has the focus, ready to type
            assert await page.evaluate("() => document.activeElement.id") == "q"
            continue
        # elsewhere the skip link is the keyboard's first stop
        await page.keyboard.press("Tab")
        assert await page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    await phone.close()
