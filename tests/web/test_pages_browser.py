"""The pages in real Chromium (Debian's /usr/bin/chromium driven by Playwright), against ``devlink serve``."""

import subprocess
from pathlib import Path

from github_world import GitHubWorld
from gitrepos import GitRepo
from servers import Server, signed_in


def push_repo(tmp_path: Path, name: str, messages: list[str]) -> tuple[Path, list[str]]:
    repo = GitRepo(tmp_path / f"{name}-work")
    bare = tmp_path / f"{name}.git"
    subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", "--bare", str(bare)], check=True)
    repo.git("remote", "add", "origin", str(bare))
    shas = [repo.commit(m) for m in messages]
    repo.git("push", "-q", "origin", "main")
    return bare, shas


def test_link_a_repository_and_read_an_issue_in_the_browser(
    server: Server, browser: object, tmp_path: Path
) -> None:
    first, first_shas = push_repo(tmp_path, "alpha", ["WEB-1 alpha change", "unrelated", "WEB-1 alpha again"])
    second, second_shas = push_repo(tmp_path, "beta", ["WEB-1 beta change"])
    page = signed_in(browser, server)

    # link both repositories through the form on the repositories page
    page.goto(f"{server.url}/repositories")
    assert "No repositories linked yet" in page.inner_text("main")
    for path, name in ((first, "alpha"), (second, "beta")):
        page.fill("input[name=url]", str(path))
        page.fill("input[name=name]", name)
        page.click("text=Link repository")
        page.wait_for_url(f"{server.url}/repositories")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.badge')].every(b => b.textContent.trim() === 'idle')"
        " && document.querySelectorAll('.badge').length === 2",
        timeout=20000,
    )
    rows = page.locator("table.repos tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).locator("td.num").inner_text() == "3"

    # a bad location shows the reason, and loses nothing already linked
    page.fill("input[name=url]", str(tmp_path / "missing"))
    page.click("text=Link repository")
    # over the web a missing path reads as any non-repository: no answer tells what exists on the server
    assert page.inner_text("p.error") == f"{tmp_path / 'missing'} is not a git repository"
    assert page.locator("table.repos tbody tr").count() == 2

    # search for the key; the panel groups commits by repository, newest first
    page.fill("input[name=key]", "web-1")
    page.click("header button")
    page.wait_for_url(f"{server.url}/issues/WEB-1")
    assert page.inner_text("[data-count=commits]") == "3"
    assert page.inner_text("[data-count=repositories]") == "2"
    groups = page.locator("section.commits")
    assert groups.count() == 2
    alpha = page.locator("section.commits[data-repository=alpha] tr.commit")
    assert [alpha.nth(i).get_attribute("data-sha") for i in range(alpha.count())] == [first_shas[2], first_shas[0]]
    beta = page.locator("section.commits[data-repository=beta] tr.commit")
    assert [beta.nth(i).get_attribute("data-sha") for i in range(beta.count())] == [second_shas[0]]
    page.click("section.commits[data-repository=alpha] summary >> nth=0")
    assert "WEB-1 alpha again" in page.inner_text("section.commits[data-repository=alpha] pre >> nth=0")
    page.screenshot(path=str(tmp_path / "issue.png"), full_page=True)

    # a soft sync from the page goes through the queue and comes back idle
    page.goto(f"{server.url}/repositories")
    page.click("#repo-1 >> text=Soft sync")
    page.wait_for_url(f"{server.url}/repositories")
    page.wait_for_function("() => document.querySelector('#repo-1 .badge').textContent.trim() === 'idle'",
                           timeout=20000)
    page.close()


def test_link_a_github_account_with_the_wizard(browser: object, github: GitHubWorld, tmp_path: Path) -> None:
    """Accounts page → token form → the account's repositories with checkboxes → link one → it syncs."""
    from github_world import TOKEN
    from servers import start_server, stop_server

    github.repo("octo", "api")
    github.repo("octo", "web", private=True)
    github.stub.add_pull("octo", "api", title="WIZ-3 wizard", head="feature")
    server = start_server(tmp_path / "home")
    try:
        page = signed_in(browser, server)
        page.goto(f"{server.url}/accounts")
        page.fill("input[name=url]", github.stub.web_url)
        page.fill("input[name=name]", "octo")
        page.fill("input[name=token]", "ghp_wrong")
        page.click("button:has-text('Link account')")
        assert "refused the credential" in page.inner_text("[role=alert]")
        page.fill("input[name=url]", github.stub.web_url)
        page.fill("input[name=name]", "octo")
        page.fill("input[name=token]", TOKEN)
        page.click("button:has-text('Link account')")
        page.wait_for_url(f"{server.url}/accounts/1")
        rows = page.inner_text("table.repos")
        assert "octo/api" in rows and "octo/web" in rows and "private" in rows
        page.check("input[aria-label='octo/api']")
        page.click("button:has-text('Link selected')")
        page.wait_for_function(
            "() => document.querySelector('#repo-1 .badge') && "
            "document.querySelector('#repo-1 .badge').textContent.trim() === 'idle'", timeout=20000)
        assert "yes" in page.inner_text("#repo-1 td.hook")
        assert len(github.stub.hooks("octo", "api")) == 1 and github.stub.hooks("octo", "web") == []
        page.goto(f"{server.url}/issues/WIZ-3")
        assert "#1 WIZ-3 wizard" in page.inner_text("section.pulls")
        assert TOKEN not in page.content()
    finally:
        stop_server(server)


def test_sign_in_with_the_host_from_the_accounts_page(browser: object, github: GitHubWorld, tmp_path: Path) -> None:
    """*Sign in with …* POSTs the flow's start from devlink's page; the host grants, the callback links the account.

    A link to the start URL only shows a confirmation, whose Cancel stores nothing.
    """
    from servers import start_server, stop_server

    github.repo("octo", "api")
    github.stub.oauth_user = "octo"  # signed in on the host, the app already authorised: it grants at once
    server = start_server(tmp_path / "home", own_base_url=True)
    client_id, secret = "Iv1.browsertest0001", "s3cr3t-0f-the-browser-test-app-0123456789"
    github.stub.add_oauth_app(client_id, secret, callback_url=f"{server.url}/oauth/github/callback")
    host = f"127.0.0.1:{github.stub.port}"
    try:
        done = server.cli("host", "set", "--url", github.stub.web_url, "--oauth-client-id", client_id,
                          "--oauth-client-secret", "-", input=secret + "\n")
        assert done.returncode == 0, done.stderr
        page = signed_in(browser, server)
        page.goto(f"{server.url}/oauth/github/start?host={host}&account=octo&link=all&auto_link=true")
        assert "every repository of the account" in page.inner_text("main")
        page.click("text=Cancel")
        page.wait_for_url(f"{server.url}/accounts")
        assert "No accounts linked yet" in page.inner_text("main")

        page.fill(f"input[aria-label='Account on {host}']", "octo")
        page.check("form.oauth input[name=link]")
        page.click(f"button:has-text('Sign in with {host}')")
        page.wait_for_url(f"{server.url}/accounts/1")
        assert "octo/api" in page.inner_text("table.repos")
        assert [c["name"] for c in page.context.cookies() if c["name"] == "devlink_oauth"] == []  # used and cleared
        page.wait_for_function(
            "() => document.querySelector('#repo-1 .badge') && "
            "document.querySelector('#repo-1 .badge').textContent.trim() === 'idle'", timeout=20000)
        assert len(github.stub.hooks("octo", "api")) == 1
        assert secret not in page.content()
        page.close()
    finally:
        stop_server(server)
