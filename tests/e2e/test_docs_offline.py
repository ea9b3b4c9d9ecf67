"""`/docs` renders in a real browser with no network beyond the server: Swagger UI's assets
come from the package, not a CDN. Headless Chromium (Debian's `chromium`; CI installs it)
loads the page with every host name but 127.0.0.1 unresolvable, runs its scripts, and the
rendered DOM shows the API's operations."""

from __future__ import annotations

import os
import shutil
import subprocess

import httpx
import pytest

from tests.e2e.server_support import ServerProcess

pytestmark = pytest.mark.backends("sqlite")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OFFLINE = "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"


@pytest.fixture
def chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return CHROMIUM


def rendered(browser: str, url: str) -> str:
    """The DOM after the page's scripts ran, with no name resolution but 127.0.0.1."""
    run = subprocess.run(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--host-resolver-rules={OFFLINE}", "--virtual-time-budget=15000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_docs_render_offline(shared_server: ServerProcess, chromium: str) -> None:
    page = httpx.get(f"{shared_server.url}/docs", trust_env=False).text
    assert "cdn" not in page.lower()
    dom = rendered(chromium, f"{shared_server.url}/docs")
    assert 'class="swagger-ui' in dom
    assert "opblock" in dom, dom[-2000:]  # an operation, rendered from /v1/openapi.json
    assert "/v1/messages" in dom
    assert "Failed to load API definition" not in dom


def test_docs_assets_are_served_from_the_package(shared_server: ServerProcess) -> None:
    from swagger_ui_bundle import swagger_ui_path

    served = httpx.get(f"{shared_server.url}/docs/assets/swagger-ui-bundle.js", trust_env=False)
    assert served.status_code == 200
    with open(os.path.join(swagger_ui_path, "swagger-ui-bundle.js"), "rb") as shipped:
        assert served.content == shipped.read()
