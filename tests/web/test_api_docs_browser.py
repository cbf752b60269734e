"""/docs in real Chromium: Swagger UI from devlink's own files, offline, under the Content-Security-Policy."""

import ipaddress
from urllib.parse import urlsplit

from servers import Server


def _loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def test_the_openapi_page_renders_offline_without_csp_violations(server: Server, browser: object) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    requests: list[str] = []
    console: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))

    response = page.goto(f"{server.url}/docs")
    assert response is not None and response.status == 200
    page.wait_for_selector(".opblock", timeout=20000)
    operations = page.locator(".opblock-summary-path")
    paths = {operations.nth(i).get_attribute("data-path") for i in range(operations.count())}
    assert {"/api/v1/repositories", "/api/v1/repositories/{repository_id}", "/hooks/git"} <= paths
    # a click opens an operation and shows its documented problem responses
    page.click("#operations-repositories-get_repository_api_v1_repositories__repository_id__get .opblock-summary")
    page.wait_for_selector(".responses-table .response[data-code='404']", timeout=10000)
    assert "application/problem+json" in page.inner_text(".responses-wrapper")

    assert requests and all(_loopback(url) for url in requests), [u for u in requests if not _loopback(u)]
    assert not [line for line in console if line.startswith(("error", "pageerror"))], console  # CSP reports are errors
    page.close()
