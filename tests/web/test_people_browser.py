"""Signing in and who sees what, in real Chromium against a ``devlink serve`` started on an empty database.

The admin signs in with the password the first run printed, makes a member on the users page, gives them
one project's development panel; the member sees that panel and not the other project's; sign-out ends it;
a form another site serves cannot post to devlink even with the session cookie in the browser.
"""

import http.server
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitrepos import GitRepo
from servers import Server, start_server, stop_server


@pytest.fixture
def first_run(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    server = start_server(tmp_path / "home", admin=False)
    try:
        deadline = time.monotonic() + 10
        while "first run: sign in at" not in server.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        line = next(line for line in server.log.read_text().splitlines() if "first run: sign in at" in line)
        yield server, line.rsplit("password ", 1)[1].strip()
    finally:
        stop_server(server)


@pytest.fixture
def evil_site(tmp_path: Path, first_run: tuple[Server, str]) -> Iterator[str]:
    """Another origin (another port) serving a page whose form posts to devlink."""
    site = tmp_path / "evil"
    site.mkdir()
    (site / "index.html").write_text(
        f'<form method="post" action="{first_run[0].url}/repositories"><input name="url" value="/etc">'
        '<button id="go">win a prize</button></form>')

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(site), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    httpd.shutdown()


def _sign_in(page: object, server: Server, user: str, password: str) -> None:
    page.goto(f"{server.url}/issues/APP-1")  # type: ignore[attr-defined]
    page.wait_for_url(f"{server.url}/sign-in?next=%2Fissues%2FAPP-1")  # type: ignore[attr-defined]
    page.fill("input[name=username]", user)  # type: ignore[attr-defined]
    page.fill("input[name=password]", password)  # type: ignore[attr-defined]
    page.click("form.sign-in button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(f"{server.url}/issues/APP-1")  # type: ignore[attr-defined]


def test_first_run_a_member_and_one_projects_panel(
    first_run: tuple[Server, str], browser: object, tmp_path: Path, evil_site: str
) -> None:
    server, password = first_run
    work = GitRepo(tmp_path / "work")
    work.commit("APP-1 the app change")
    work.commit("OPS-1 the ops change")
    bare = tmp_path / "both.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work.path), str(bare)], check=True)
    tracker = tmp_path / "tracker.toml"

    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    _sign_in(page, server, "admin", password)
    # the admin links the repository and makes a member on the users page
    page.goto(f"{server.url}/repositories")
    page.fill("input[name=url]", str(bare))
    page.click("text=Link repository")
    page.wait_for_function("() => document.querySelector('.badge')?.textContent.trim() === 'idle'", timeout=20000)
    page.goto(f"{server.url}/users")
    page.fill("input[name=username]", "mia")
    page.fill("input[name=email]", "mia@example.com")
    page.click("text=Add user")
    mia_password = page.inner_text("code.secret").strip()
    assert len(mia_password) >= 16 and "mia" in page.inner_text("table.users")
    # APP lets mia see development data; OPS lets only admins (the tracker file names her, so she exists first)
    tracker.write_text('[[projects]]\nkey = "APP"\nname = "App"\n[projects.permissions]\nbrowse = ["everyone"]\n'
                       'view_development = ["mia"]\n\n[[projects]]\nkey = "OPS"\nname = "Ops"\n'
                       '[projects.permissions]\nbrowse = ["everyone"]\nview_development = []\n')
    imported = server.cli("tracker", "import", str(tracker))
    assert imported.returncode == 0, imported.stderr
    page.goto(f"{server.url}/issues/OPS-1")
    assert "OPS-1 the ops change" in page.inner_text("main")  # an admin sees every panel
    page.click("header form.who button")
    page.wait_for_url(f"{server.url}/sign-in")
    page.goto(f"{server.url}/repositories")
    assert page.url.startswith(f"{server.url}/sign-in")  # signed out for good

    member = browser.new_context()  # type: ignore[attr-defined]
    mia = member.new_page()
    _sign_in(mia, server, "mia", mia_password)
    assert "APP-1 the app change" in mia.inner_text("main")
    assert "Users" not in mia.inner_text("header nav") and "Accounts" not in mia.inner_text("header nav")
    mia.goto(f"{server.url}/issues/OPS-1")
    assert "do not have permission to view development information" in mia.inner_text("main")
    assert "OPS-1 the ops change" not in mia.inner_text("main")
    mia.goto(f"{server.url}/users")
    assert "only an admin" in mia.inner_text("main")

    # a page on another origin posts a form to devlink with mia's cookie in the browser: refused, nothing linked
    mia.goto(evil_site)
    mia.click("#go")
    mia.wait_for_load_state()
    assert "cross-site" in mia.inner_text("body")
    mia.goto(f"{server.url}/repositories")
    assert "/etc" not in mia.inner_text("main")
    context.close()
    member.close()
