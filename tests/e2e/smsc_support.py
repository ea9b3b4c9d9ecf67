"""The independent SMSC of the SMPP end-to-end tests: tests/e2e/smsc/smsc.js (npm `smpp`).

:func:`install` runs ``npm ci`` once when node_modules is missing (npm is required: the
tests fail, not skip, without it). :class:`Smsc` starts the script, reads every PDU it
recorded (one JSON object per line) and drives its control port.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.support.waiting import wait_for

SMSC_DIR = Path(__file__).resolve().parent / "smsc"


def install() -> None:
    if (SMSC_DIR / "node_modules" / "smpp").is_dir():
        return
    npm = shutil.which("npm")
    assert npm, "npm is needed for the SMPP end-to-end tests (the SMSC is the npm package smpp)"
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=SMSC_DIR, check=True, timeout=300)


class Smsc:
    def __init__(self, record: Path) -> None:
        node = shutil.which("node")
        assert node, "node is needed for the SMPP end-to-end tests"
        self.record = record
        self.proc = subprocess.Popen(
            [node, "smsc.js", str(record)], cwd=SMSC_DIR, stdout=subprocess.PIPE
        )
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline().decode().split()
        assert ready[:1] == ["ready"], f"the SMSC did not start: {ready}"
        self.port, self.control_port = int(ready[1]), int(ready[2])
        self._http = httpx.Client(base_url=f"http://127.0.0.1:{self.control_port}", timeout=5)

    def close(self) -> None:
        self._http.close()
        self.proc.kill()
        self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def configure(self, **values: Any) -> dict[str, Any]:
        return self._post("/config", values)

    def inject_mo(self, **values: Any) -> None:
        assert self._post("/mo", values) == {"result": "ok"}

    def kill_links(self) -> int:
        return int(self._post("/kill", {})["killed"])

    def sessions(self) -> int:
        return int(self._http.get("/status").json()["sessions"])

    def wait_bound(self, count: int = 1, timeout: float = 10) -> None:
        assert wait_for(self.sessions, lambda n: n == count, timeout=timeout) == count

    def pdus(self, command: str | None = None, **match: Any) -> list[dict[str, Any]]:
        """What the SMSC recorded, oldest first: every PDU, or those of one command whose
        fields equal ``match``."""
        lines = self.record.read_text(encoding="utf-8").splitlines()
        found = [json.loads(line) for line in lines if line.strip()]
        if command is not None:
            found = [p for p in found if p["command"] == command]
        return [p for p in found if all(p.get(k) == v for k, v in match.items())]

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._http.post(path, json=body)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]
