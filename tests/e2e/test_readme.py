"""The README's walkthrough, run as written, in order, against `smsgate serve --demo` with
the default caps: every command the README shows in "Quick start" and "From your
application" succeeds. The commands are read from the README's code blocks; only the
placeholders (`<ApiKey>`, `KEY`, `...`), the port and the `.venv/bin/` path are filled in.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server_support import PROXY_ENV, SCRUBBED_ENV, free_port
from tests.support.waiting import wait_for

README = Path(__file__).resolve().parents[2] / "README.md"
BIN = Path(sys.executable).parent
README_URL = "http://127.0.0.1:8080"
FENCE = re.compile(r"```(\w*)\n(.*?)```", re.DOTALL)
KEY_LINE = re.compile(r"^\s*ApiKey\s+([0-9A-Za-z]{32})$", re.MULTILINE)


def section(title: str) -> list[tuple[str, str]]:
    """(language, code) of each code block under the README's ``## title``."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return FENCE.findall(text[start : end if end > 0 else None])


def shell_lines(code: str) -> list[str]:
    """The commands of a shell block, without comments."""
    lines = (line.split("  #")[0].strip() for line in code.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


class Demo:
    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATE_")}
        for name in SCRUBBED_ENV + PROXY_ENV:
            env.pop(name, None)
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONUNBUFFERED"] = "1"
        self.env = env
        self.log = cwd / "serve.log"
        self.api_key = ""
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "smsgate"), "serve", "--demo", "--port", str(self.port)],
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ready = wait_for(self._healthy, timeout=30)
        assert ready, self.log.read_text()
        match = KEY_LINE.search(self.log.read_text())
        assert match, self.log.read_text()
        self.api_key = match.group(1)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1, trust_env=False).is_success
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)

    def fill(self, code: str) -> str:
        """The README's code with this server's port and key in place of its placeholders."""
        return (
            code.replace(README_URL, self.url)
            .replace("<ApiKey>", self.api_key)
            .replace("-k KEY", f"-k {self.api_key}")
            .replace('api_key="..."', f'api_key="{self.api_key}"')
            .replace(".venv/bin/smsgate", str(BIN / "smsgate"))
        )

    def run(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=60
        )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    server = Demo(tmp_path_factory.mktemp("readme"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_the_walkthrough_runs_in_order_with_the_default_caps(demo: Demo) -> None:
    quick = [code for lang, code in section("Quick start") if "curl" in code]
    app = section("From your application")
    python = [code for lang, code in app if lang == "python"]
    cli = [code for lang, code in app if lang == "sh" and "smsgate send" in code]
    assert (len(quick), len(python), len(cli)) == (1, 1, 1), "the README's blocks moved"
    (demo.cwd / "numbers.csv").write_text("mobile\n13800138003\n13800138004\n13800138005\n")
    answers = []

    for line in shell_lines(quick[0]):
        run = demo.run(shlex.split(demo.fill(line)))
        assert run.returncode == 0, (line, run.stdout, run.stderr)
        answers.append(run.stdout)
    assert answers[:2] == ["0", "0\n1,999"]
    assert answers[2].splitlines()[1] == "    【smsgate】您的验证码是1234"  # whole, not cut
    assert "13800138000" in answers[2].splitlines()[0]

    run = demo.run([sys.executable, "-c", demo.fill(python[0])])
    assert (run.returncode, run.stdout) == (0, "Balance(sent=2, remaining=998)\n"), run.stderr

    outputs = []
    for line in shell_lines(cli[0]):
        run = demo.run(shlex.split(demo.fill(line)))
        assert run.returncode == 0, (line, run.stdout, run.stderr)
        outputs.append(run.stdout)
    assert outputs[0] == "Accepted: 1 number(s)\n"
    assert "Done: 3 accepted, 0 failed, 0 unknown, 0 not tried." in outputs[1]
    assert outputs[2] == "sent 6, remaining 994\n"


def test_the_try_line_carries_the_real_key(demo: Demo) -> None:
    banner = demo.log.read_text()
    (line,) = [x for x in banner.splitlines() if "Try: curl" in x]
    assert f"p={demo.api_key}'" in line
    url = line.split("'")[1].replace("127.0.0.1:" + str(demo.port), f"127.0.0.1:{demo.port}")
    assert httpx.get(url, trust_env=False).text.startswith("0\n")
