"""The README's quick start, exactly as written, against the real server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from chimatic import Chimatic
from tests.server import LocalHTTPServer, Server, Workspace

README = Path(__file__).resolve().parent.parent / "README.md"


def quick_start() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "README.md has no python block under ## Quick start"
    return str(blocks[0])


def test_quick_start(
    server: Server,
    workspace: Workspace,
    client: Chimatic,
    receiver: LocalHTTPServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = quick_start()
    assert len(code.strip().splitlines()) <= 8
    channel = client.channels.create(url=f"{receiver.url}/readme")
    # A webhook as the receiver got it, for the block's verify_webhook line.
    earlier = client.notifications.create(channel_id=channel.id, payload={"order": "o-1041"})
    got = receiver.wait_for(lambda r: r.headers.get("webhook-id") == earlier.id)

    monkeypatch.setenv("CHIMATIC_API_KEY", workspace.api_key)
    monkeypatch.setenv("CHIMATIC_BASE_URL", server.url)
    scope: dict[str, Any] = {
        "channel_id": channel.id,
        "signing_secret": channel.signing_secret,
        "body": got.body,
        "headers": got.headers,
    }
    exec(compile(code, str(README), "exec"), scope)

    assert scope["payload"] == {"order": "o-1041"}
    sent = scope["sent"]
    assert capsys.readouterr().out.strip() in ("queued", "delivering", "delivered")
    receiver.wait_for(lambda r: r.headers.get("webhook-id") == sent.id)
    scope["client"].close()
